"""Joining (发起 / start sharing) and helping (助力), the carrier confirmation, revocation, and a participant's
progress — the functions the public pages call.

One help per person per campaign holds under concurrent requests: an accepted help inserts the person's keys
(``campaign_help_keys``, unique per campaign) in the same transaction as the help row; a second request for the
same person hits the constraint and is recorded as ``already_helped``. Counters move by UPDATE … + 1.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select, text, update
from sqlalchemy.exc import IntegrityError

from siyu.domain.brand_time import day_start_utc, local_day
from siyu.domain.campaign import rules
from siyu.domain.campaign.definition import CampaignDefinition
from siyu.domain.models import Identity
from siyu.errors import NotFound, SiyuError
from siyu.services.campaigns import help_writer, payouts
from siyu.services.campaigns.definitions import cached_row, definition_of, get_row, utcnow
from siyu.services.campaigns.help_sql import HelpSql
from siyu.services.campaigns.people import Person, identify, person
from siyu.services.context import Context
from siyu.stores.state.campaign_models import (
    CampaignHelpRow,
    CampaignParticipantRow,
    CampaignRow,
)
from siyu.stores.state.driver_sql import Prepared, Savepoint

log = logging.getLogger(__name__)


class Refused(SiyuError):
    """A join / team / gift action refused by a campaign rule; ``code`` is a key of ``rules.REASONS`` and the
    message is the Chinese text (``en`` the English one)."""

    status_code = 409

    def __init__(self, code: str) -> None:
        zh, en = rules.REASONS[code]
        super().__init__(zh, "campaign")
        self.code = code
        self.en = en


def _day_start(now: datetime) -> datetime:
    """Midnight (Asia/Shanghai) of ``now`` (naive UTC), as naive UTC."""
    return day_start_utc(local_day(now))


def participant_dict(p: CampaignParticipantRow) -> dict[str, Any]:
    return {
        "id": p.id,
        "campaign_id": p.campaign_id,
        "customer_id": p.customer_id,
        "token": p.token,
        "variant": p.variant,
        "channel": p.channel,
        "platform": p.platform,
        "sharer_id": p.sharer_id,
        "depth": p.depth,
        "guide_id": p.guide_id,
        "region": p.region,
        "new_customer": p.new_customer,
        "helps_counted": p.helps_counted,
        "helps_pending": p.helps_pending,
        "tiers_reached": p.tiers_reached,
        "first_seen_at": p.first_seen_at.isoformat(),
    }


def _in_pilot(ctx: Context, brand_id: str, cd: CampaignDefinition, campaign_id: str, who: Person) -> bool:
    if cd.pilot is None:
        return False
    if cd.pilot.percent is not None and rules.in_pilot_percent(cd.pilot.percent, who.key, campaign_id):
        return True
    if cd.pilot.segment_id and who.customer_id:
        found = ctx.warehouse.fetch(
            "SELECT 1 FROM segment_members WHERE brand_id = ? AND segment_id = ? AND customer_id = ? "
            "AND exited_at IS NULL LIMIT 1",
            [brand_id, cd.pilot.segment_id, who.customer_id],
        )
        return bool(found)
    return False


def by_token(ctx: Context, token: str) -> CampaignParticipantRow:
    """The participant a share token belongs to (NotFound otherwise)."""
    with ctx.sessions() as s:
        p = s.scalar(select(CampaignParticipantRow).where(CampaignParticipantRow.token == token))
    if p is None:
        raise NotFound("share link not found; ask your friend for a new one", "token")
    return p


def join(
    ctx: Context,
    brand_id: str,
    campaign_id: str,
    identity: Identity,
    *,
    sharer_token: str | None = None,
    channel: str = "",
    platform: str = "",
    guide_id: str | None = None,
    region: str = "",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Start sharing (发起): returns the participant (with its share ``token``); joining twice returns the same
    participant. ``sharer_token``: the link that brought them (depth = sharer's + 1; 循环裂变 must be on for an
    assist); ``guide_id`` defaults to the sharer's guide. Raises ``Refused`` (not open / not in pilot / region
    / depth limit / ended)."""
    now = now or utcnow()
    row = get_row(ctx, brand_id, campaign_id)
    cd = definition_of(row)
    who = identify(ctx, brand_id, identity, f"campaign-join:{campaign_id}:{identity.type}:{identity.value}", now=True)
    with ctx.sessions() as s:
        existing = s.scalar(
            select(CampaignParticipantRow).where(
                CampaignParticipantRow.campaign_id == campaign_id,
                CampaignParticipantRow.person_key.in_(list(who.keys)),
            )
        )
    if existing is not None:
        return participant_dict(existing)
    d = rules.open_for(row.status, cd, now, _in_pilot(ctx, brand_id, cd, campaign_id, who))
    if not d.ok:
        raise Refused(d.code)
    if not rules.region_allowed(cd, region):
        raise Refused("region")
    sharer = by_token(ctx, sharer_token) if sharer_token else None
    if sharer is not None and sharer.campaign_id != campaign_id:
        raise Refused("sharer_unknown")
    if sharer is not None and cd.kind == "assist" and cd.assist and not cd.assist.cyclic:
        raise Refused("depth_limit")
    depth = rules.child_depth(sharer.depth if sharer else None)
    if depth > cd.max_depth:
        raise Refused("depth_limit")
    p = CampaignParticipantRow(
        id="pt_" + secrets.token_hex(6),
        brand_id=brand_id,
        campaign_id=campaign_id,
        person_key=who.key,
        customer_id=who.customer_id,
        id_type=identity.type,
        id_value=identity.value,
        token=secrets.token_urlsafe(12),
        variant=rules.assign_variant(cd.variants, who.key, campaign_id),
        channel=channel or (sharer.channel if sharer else ""),
        platform=platform or (sharer.platform if sharer else ""),
        sharer_id=sharer.id if sharer else None,
        depth=depth,
        guide_id=guide_id or (sharer.guide_id if sharer else None),
        region=region,
        new_customer=_is_new(ctx, brand_id, who, row),
        first_seen_at=now,
        observed=True,
        helps_counted=0,
        helps_pending=0,
        tiers_reached=0,
        pool_choices={},
    )
    try:
        with ctx.sessions() as s, s.begin():
            s.add(p)
    except IntegrityError:  # a concurrent join of the same person
        with ctx.sessions() as s:
            again = s.scalar(
                select(CampaignParticipantRow).where(
                    CampaignParticipantRow.campaign_id == campaign_id, CampaignParticipantRow.person_key == who.key
                )
            )
        if again is None:
            raise
        return participant_dict(again)
    return participant_dict(p)


def _is_new(ctx: Context, brand_id: str, who: Person, row: CampaignRow) -> bool:
    """Not a customer of the brand before joining: unknown to OneID, or first seen after the campaign opened."""
    if who.customer_id is None:
        return True
    found = ctx.warehouse.fetch(
        "SELECT created_at FROM customers WHERE brand_id = ? AND customer_id = ?", [brand_id, who.customer_id]
    )
    opened = row.pilot_at or row.launched_at
    return bool(found and opened and found[0][0] is not None and found[0][0] >= opened)


@dataclass(frozen=True)
class Sharer:
    """What the help path needs of a sharer (fields that do not change after joining; ``helps_counted`` is the
    count when it was read, for display only)."""

    id: str
    brand_id: str
    campaign_id: str
    token: str
    person_key: str
    customer_id: str | None
    id_type: str
    id_value: str
    variant: str | None
    channel: str
    platform: str
    depth: int
    guide_id: str | None
    helps_counted: int


SHARER_TTL = 60.0
_P: Table = CampaignParticipantRow.__table__  # type: ignore[assignment]
_H: Table = CampaignHelpRow.__table__  # type: ignore[assignment]


_HELP_DEFAULTS: dict[str, Any] = {
    "sharer_id": None,
    "variant": None,
    "channel": "",
    "platform": "",
    "depth": 1,
    "guide_id": None,
    "reason": "",
    "carrier_ref": "",
    "revoked_at": None,
    "observed": False,
}


# built once: a burst's first views of many sharers each run it
_SHARER_BY_TOKEN = select(*(_P.c[f.name] for f in fields(Sharer))).where(_P.c.token == bindparam("token"))


def sharer_of(ctx: Context, token: str) -> Sharer | None:
    """The sharer a share token belongs to, reused for ``SHARER_TTL`` seconds (None when unknown)."""
    cache: OrderedDict[str, tuple[float, Sharer]] = ctx.extras.setdefault("campaign_sharers", OrderedDict())
    now = time.monotonic()
    hit = cache.get(token)
    if hit is not None and now - hit[0] < SHARER_TTL:
        return hit[1]
    with ctx.engine.connect() as con:
        got = con.execute(_SHARER_BY_TOKEN, {"token": token}).first()
    if got is None:
        return None
    return _keep(cache, now, Sharer(*got))  # type: ignore[call-arg]


def remember_sharer(ctx: Context, p: CampaignParticipantRow) -> None:
    """Keep ``p`` (just read, e.g. for a help page view) as its token's sharer: the help POSTs that follow the
    page views of a shared link then find it in ``sharer_of``'s cache."""
    cache: OrderedDict[str, tuple[float, Sharer]] = ctx.extras.setdefault("campaign_sharers", OrderedDict())
    _keep(cache, time.monotonic(), Sharer(*(getattr(p, f.name) for f in fields(Sharer))))


def _keep(cache: OrderedDict[str, tuple[float, Sharer]], now: float, sharer: Sharer) -> Sharer:
    cache[sharer.token] = (now, sharer)
    if len(cache) > 100_000:
        cache.popitem(last=False)
    return sharer


@dataclass
class _Help:
    """A help attempt prepared outside the transaction."""

    ctx: Context
    row: CampaignRow
    brand_id: str
    campaign_id: str
    cd: CampaignDefinition
    who: Person
    sharer: Sharer | None
    base: dict[str, Any]
    decision: rules.Decision
    region: str
    now: datetime


def help(
    ctx: Context,
    brand_id: str,
    campaign_id: str,
    sharer_token: str,
    identity: Identity,
    *,
    device_id: str = "",
    ip: str = "",
    region: str = "",
    channel: str = "",
    platform: str = "",
    now: datetime | None = None,
    who: Person | None = None,
) -> dict[str, Any]:
    """One person helps a sharer (助力). Returns ``{"state": counted | pending_carrier | rejected, "reason",
    "message_zh", "message_en", "help_id", "carrier", "progress"}``; every attempt is recorded (rejections with
    their reason). With a ``wecom_guide`` carrier the help counts once the person adds the guide
    (``confirm_carrier``); ``h5`` counts at once. Reaching a tier issues its reward (a pool tier waits for
    ``choose_reward``). ``who``: the person as OneID answered at sign-in (else asked now, through the cache).

    The checks, the help row, its keys, the sharer's counter and the rewards of a tier it newly reaches are one
    transaction, run by the process's group-commit writer (``help_writer``) with the concurrent helps."""
    job = _prepare(
        ctx, brand_id, campaign_id, sharer_token, identity, (device_id, ip, region, channel, platform), now, who
    )
    return help_writer.write(ctx, lambda con: _write_help(con, job))


async def help_async(
    ctx: Context,
    brand_id: str,
    campaign_id: str,
    sharer_token: str,
    identity: Identity,
    *,
    device_id: str = "",
    ip: str = "",
    region: str = "",
    channel: str = "",
    platform: str = "",
    who: Person | None = None,
) -> dict[str, Any]:
    """``help`` for a coroutine (the public help POST): the same checks and transaction; the event loop waits
    for the writer's batch without a worker thread per request."""
    if who is None or who.identity != identity:  # a warehouse query: off the event loop
        who = await asyncio.to_thread(person, ctx, brand_id, identity)
    job = _prepare(
        ctx, brand_id, campaign_id, sharer_token, identity, (device_id, ip, region, channel, platform), None, who
    )
    return await help_writer.write_async(ctx, lambda con: _write_help(con, job))


def _prepare(
    ctx: Context,
    brand_id: str,
    campaign_id: str,
    sharer_token: str,
    identity: Identity,
    where: tuple[str, str, str, str, str],
    now: datetime | None,
    who: Person | None,
) -> _Help:
    """Everything a help needs that is read outside its transaction (campaign, person, sharer, the time rules);
    ``where`` = (device id, IP, region, channel, platform)."""
    device_id, ip, region, channel, platform = where
    now = now or utcnow()
    row = cached_row(ctx, brand_id, campaign_id)
    cd = definition_of(row)
    if who is None or who.identity != identity:
        who = person(ctx, brand_id, identity)
    sharer = sharer_of(ctx, sharer_token)
    device_id, ip = device_id[:128], ip[:64]
    base: dict[str, Any] = {
        "brand_id": brand_id,
        "campaign_id": campaign_id,
        "helper_key": who.key,
        "helper_customer_id": who.customer_id,
        "helper_id_type": identity.type,
        "helper_id_value": identity.value,
        "device_id": device_id,
        "ip": ip,
        "region": region[:40],
        "created_at": now,
        "new_customer": who.customer_id is None,
    }
    if sharer is None or sharer.campaign_id != campaign_id:
        sharer = None
        d = rules.refuse("sharer_unknown")
    else:
        base |= {
            "sharer_id": sharer.id,
            "variant": sharer.variant,
            "channel": channel or sharer.channel,
            "platform": platform or sharer.platform,
            "depth": rules.child_depth(sharer.depth),
            "guide_id": sharer.guide_id,
        }
        d = (
            rules.window(cd, now)
            if row.status in ("live", "pilot")
            else rules.refuse("ended" if row.status == "ended" else "not_open")
        )
    return _Help(ctx, row, brand_id, campaign_id, cd, who, sharer, base, d, region, now)


def _write_help(con: Connection, job: _Help) -> dict[str, Any]:
    """The help's transaction (inside the writer's batch): counts, the rule decision, the help row with its keys
    and the sharer's counter — or the rejected row — and the rewards of a tier it newly reaches (in a savepoint
    of their own: a payout failure leaves the help counted and is retried by the sharer's next counted help)."""
    cd, sharer, who, d = job.cd, job.sharer, job.who, job.decision
    if sharer is None:
        return _reject(HelpSql(con), cd, job.base, None, d.code)
    got = None
    sql = HelpSql(con)
    if d.ok:
        got = sql.counts(
            sorted(who.keys),
            {
                "c": job.campaign_id,
                "dev": job.base["device_id"],
                "ip": job.base["ip"],
                "day": _day_start(job.now),
                "hour": job.now - timedelta(hours=1),
                "b": job.brand_id,
                "hk": who.key,
                "sid": sharer.id,
            },
        )
        helped, dev, ipn, per = bool(got[0]), int(got[1] or 0), int(got[2] or 0), int(got[3] or 0)
        sharer_keys = frozenset(
            {sharer.person_key, f"i:{sharer.id_type}:{sharer.id_value}"}
            | ({f"c:{sharer.customer_id}"} if sharer.customer_id else set())
        )
        tiers = cd.tiers(sharer.variant)
        attempt = rules.HelpAttempt(
            helper_keys=who.keys,
            sharer_keys=sharer_keys,
            already_helped=helped,
            device_today=dev,
            ip_last_hour=ipn,
            person_today=per,
            region=job.region or None,
            sharer_complete=cd.kind == "assist" and rules.assist_complete(tiers, got[4]),
        )
        d = rules.may_help(cd, attempt)
    if not d.ok:
        return _reject(sql, cd, job.base, sharer, d.code, (got[4], got[5]) if got else None)
    counted = cd.carrier.kind == "h5"
    state = "counted" if counted else "pending_carrier"
    # SQLite: the batch holds the write lock (BEGIN IMMEDIATE), so the key check above is final and a clash
    # cannot happen here (the writer's per-job savepoint still undoes this job alone if it did); elsewhere
    # (PostgreSQL, READ COMMITTED) a concurrent help may take the key first: its own savepoint records that
    sp = con.begin_nested() if con.dialect.name != "sqlite" else None
    try:
        row = {**_HELP_DEFAULTS, **job.base, "state": state, "counted_at": job.now if counted else None}
        hid = sql.insert_help(row)
        sql.insert_keys(job.campaign_id, hid, sorted(who.keys))
        after = sql.bump("helps_counted" if counted else "helps_pending", sharer.id)
        if sp is not None:
            sp.commit()
    except IntegrityError:
        if sp is None:
            raise
        sp.rollback()
        return _reject(sql, cd, job.base, sharer, "already_helped")
    out = _answer_of(cd, int(hid), state, "", sharer.id, sharer.variant, after[0], after[1])
    if counted and cd.kind == "assist" and cd.assist is not None:
        tiers = cd.tiers(sharer.variant)
        reached = rules.tiers_reached(tiers, 0, after[0])
        if len(reached) > after[2] or (cd.assist.helper_reward_id and who.customer_id):
            payout_sp = Savepoint(con, "tier_payouts")
            try:
                if not _pay_tiers_in(con, job, tiers, [i for i in reached if i >= after[2]], len(reached)):
                    _after_count(help_writer.bound(job.ctx, con), job.brand_id, job.row, cd, sharer.id, who)
                payout_sp.commit()
            except Exception:
                payout_sp.rollback()
                log.exception("campaign %s: rewards of sharer %s not issued yet", job.campaign_id, sharer.id)
    return out


_TIERS_REACHED = Prepared(
    text("UPDATE campaign_participants SET tiers_reached = :n WHERE id = :sid AND tiers_reached < :n")
)


def _pay_tiers_in(con: Connection, job: _Help, tiers: Sequence[Any], new: list[int], reached: int) -> bool:
    """The rewards of the tiers a counted help newly reached, by Core statements in the batch's transaction
    (``payouts.issue_first_in``); False when ``_after_count`` must do it (a pool tier, a helper reward, a reward
    already keyed, a code-list or points reward — what it did here stands: issuing is idempotent)."""
    sharer = job.sharer
    assert sharer is not None and job.cd.assist is not None
    if job.cd.assist.helper_reward_id and job.who.customer_id:
        return False
    for i in new:
        rid = tiers[i].reward_id
        if not rid or not payouts.issue_first_in(con, job.brand_id, job.campaign_id, sharer, f"tier:{i}", rid, job.now):
            return False
    _TIERS_REACHED.rowcount(con, {"sid": sharer.id, "n": reached})
    return True


def _reject(
    sql: HelpSql,
    cd: CampaignDefinition,
    base: dict[str, Any],
    sharer: Sharer | None,
    code: str,
    counters: tuple[int, int] | None = None,
) -> dict[str, Any]:
    row = {**_HELP_DEFAULTS, **base, "state": "rejected", "reason": code, "observed": True, "counted_at": None}
    hid = sql.insert_help(row)
    if sharer is None:
        return _answer_of(cd, int(hid), "rejected", code, None, None, 0, 0)
    got = counters or sql.counters(sharer.id)
    return _answer_of(cd, int(hid), "rejected", code, sharer.id, sharer.variant, got[0], got[1])


def _answer_of(
    cd: CampaignDefinition,
    help_id: int,
    state: str,
    reason: str,
    sharer_id: str | None,
    variant: str | None,
    counted: int,
    pending: int,
) -> dict[str, Any]:
    zh, en = rules.REASONS.get(reason, ("", "")) if reason else ("", "")
    out: dict[str, Any] = {
        "help_id": help_id,
        "state": state,
        "reason": reason,
        "message_zh": zh,
        "message_en": en,
        "carrier": cd.carrier.model_dump() if state == "pending_carrier" else None,
    }
    if sharer_id:
        tiers = cd.tiers(variant)
        nxt = rules.next_tier(tiers, counted)
        out["progress"] = {
            "participant_id": sharer_id,
            "helps_counted": counted,
            "helps_pending": pending,
            "next_tier": None if nxt is None else {"index": nxt[0], "helps_needed": nxt[1]},
            "complete": rules.assist_complete(tiers, counted) if cd.kind == "assist" else None,
        }
    return out


def _after_count(
    ctx: Context,
    brand_id: str,
    row: CampaignRow,
    cd: CampaignDefinition,
    sharer_id: str,
    helper: Person | None,
    every_tier: bool = False,
) -> None:
    """A help was counted: issue the tiers the sharer has newly reached (``every_tier``: all reached ones, e.g.
    after a pool choice or to retry a failed grant — issuing is idempotent), and the helper's thanks."""
    with ctx.sessions() as s:
        sharer = s.get(CampaignParticipantRow, sharer_id)
    assert sharer is not None
    if cd.kind != "assist" or cd.assist is None:
        return
    tiers = cd.tiers(sharer.variant)
    reached = rules.tiers_reached(tiers, 0, sharer.helps_counted)
    for i in reached:
        if i < sharer.tiers_reached and not every_tier:
            continue
        t = tiers[i]
        reward = t.reward_id or sharer.pool_choices.get(str(i))
        if reward:
            payouts.issue(ctx, brand_id, row.id, sharer, f"tier:{i}", reward)
    if reached and sharer.tiers_reached < len(reached):
        with ctx.sessions() as s, s.begin():
            s.execute(
                update(CampaignParticipantRow)
                .where(CampaignParticipantRow.id == sharer.id, CampaignParticipantRow.tiers_reached < len(reached))
                .values(tiers_reached=len(reached))
            )
    if cd.assist.helper_reward_id and helper is not None and helper.customer_id:
        # the helper's thank-you reward goes through a participant-like record keyed by the help's person
        ghost = CampaignParticipantRow(
            id=("h_" + helper.customer_id)[:32],
            customer_id=helper.customer_id,
            variant=sharer.variant,
            guide_id=sharer.guide_id,
        )
        payouts.issue(ctx, brand_id, row.id, ghost, "helper", cd.assist.helper_reward_id)


def choose_reward(ctx: Context, brand_id: str, participant_id: str, tier: int, reward_id: str) -> dict[str, Any]:
    """The sharer picks a reward of a pool tier (奖励池); issued at once if the tier is reached. Choosing again
    after the reward was issued changes nothing."""
    with ctx.sessions() as s:
        p = s.get(CampaignParticipantRow, participant_id)
        if p is None or p.brand_id != brand_id:
            raise NotFound(f"participant {participant_id!r} not found", "participant_id")
        row = s.get(CampaignRow, p.campaign_id)
    assert row is not None
    cd = definition_of(row)
    tiers = cd.tiers(p.variant)
    if not 0 <= tier < len(tiers) or not tiers[tier].pool:
        raise SiyuError(f"tier {tier} has no reward pool; pick a tier index with a pool", "tier")
    if reward_id not in tiers[tier].pool:
        raise SiyuError(f"{reward_id!r} is not in tier {tier}'s pool; choose one of {tiers[tier].pool}", "reward_id")
    with ctx.sessions() as s, s.begin():
        fresh = s.get(CampaignParticipantRow, participant_id)
        assert fresh is not None
        choices = dict(fresh.pool_choices or {})
        choices.setdefault(str(tier), reward_id)
        fresh.pool_choices = choices
    _after_count(ctx, brand_id, row, cd, participant_id, None, every_tier=True)
    return progress(ctx, brand_id, participant_id)


def progress(ctx: Context, brand_id: str, participant_id: str) -> dict[str, Any]:
    """A participant's progress: counted / pending helps, tiers (reached, next and helps still needed, pool
    choices) and the rewards issued."""
    with ctx.sessions() as s:
        p = s.get(CampaignParticipantRow, participant_id)
        if p is None or p.brand_id != brand_id:
            raise NotFound(f"participant {participant_id!r} not found", "participant_id")
        row = s.get(CampaignRow, p.campaign_id)
    assert row is not None
    cd = definition_of(row)
    tiers = cd.tiers(p.variant)
    nxt = rules.next_tier(tiers, p.helps_counted)
    return {
        **participant_dict(p),
        "tiers": [
            {
                "index": i,
                "threshold": t.threshold,
                "name": t.name,
                "reward_id": t.reward_id,
                "pool": t.pool,
                "chosen": (p.pool_choices or {}).get(str(i)),
                "reached": p.helps_counted >= t.threshold,
            }
            for i, t in enumerate(tiers)
        ],
        "next_tier": None if nxt is None else {"index": nxt[0], "helps_needed": nxt[1]},
        "complete": rules.assist_complete(tiers, p.helps_counted) if cd.kind == "assist" else None,
        "rewards": payouts.rewards_of(ctx, p.campaign_id, p.id),
    }


def confirm_carrier(
    ctx: Context,
    brand_id: str,
    identities: list[Identity],
    *,
    code_id: int | None = None,
    guide_id: str | None = None,
    ref: str = "",
    at: datetime | None = None,
) -> int:
    """The carrier action happened (e.g. the person added the guide through the campaign's channel code
    ``code_id``): every pending help of that person (matched on any of ``identities`` or their customer) in the
    brand's open campaigns using that code counts now. Idempotent; returns how many helps were counted."""
    at = at or utcnow()
    return count_pending(ctx, brand_id, _pending_helps(ctx, brand_id, identities, code_id), at, ref, guide_id)


def count_pending(
    ctx: Context,
    brand_id: str,
    pending: Sequence[CampaignHelpRow],
    at: datetime,
    ref: str = "",
    guide_id: str | None = None,
) -> int:
    """Count helps waiting for their carrier (each once: a help no longer pending is skipped), move the sharer's
    counters and issue the tiers now reached. ``guide_id`` (when given) is who the carrier action went to.
    Returns how many were counted."""
    n = 0
    for h in pending:
        with ctx.sessions() as s, s.begin():
            res = s.execute(
                update(CampaignHelpRow)
                .where(CampaignHelpRow.id == h.id, CampaignHelpRow.state == "pending_carrier")
                .values(state="counted", counted_at=at, carrier_ref=ref[:128], guide_id=guide_id or h.guide_id)
            )
            if getattr(res, "rowcount", 0) != 1:
                continue
            s.execute(
                update(CampaignParticipantRow)
                .where(CampaignParticipantRow.id == h.sharer_id)
                .values(
                    helps_counted=CampaignParticipantRow.helps_counted + 1,
                    helps_pending=CampaignParticipantRow.helps_pending - 1,
                )
            )
        n += 1
        row = get_row(ctx, brand_id, h.campaign_id)
        assert h.sharer_id is not None
        _after_count(ctx, brand_id, row, definition_of(row), h.sharer_id, None)
    return n


def _customers(ctx: Context, brand_id: str, identities: list[Identity]) -> set[str]:
    """The customers of the identities; when none is known yet, pending observations are resolved first (a
    deletion may be processed right after its add, before OneID's run for that add)."""
    from siyu.services import oneid

    found = {c for c in (oneid.customer_of(ctx, brand_id, i) for i in identities) if c}
    if not found:
        oneid.resolve_pending(ctx, brand_id)
        found = {c for c in (oneid.customer_of(ctx, brand_id, i) for i in identities) if c}
    return found


def _pending_helps(
    ctx: Context, brand_id: str, identities: list[Identity], code_id: int | None, state: str = "pending_carrier"
) -> list[CampaignHelpRow]:
    """Helps in ``state`` of the person behind ``identities``: matched on the identities themselves, on every
    identifier OneID holds for their customer (a helper known by unionid, deleting as external_userid), and on
    the help's customer id."""
    from siyu.services import oneid

    with ctx.sessions() as s:
        camps = s.scalars(
            select(CampaignRow).where(
                CampaignRow.brand_id == brand_id, CampaignRow.status.in_(("pilot", "live", "ended"))
            )
        ).all()
    ids = [
        c.id
        for c in camps
        if (code_id is None or definition_of(c).carrier.channel_code_id == code_id)
        and (state != "counted" or _revocable(definition_of(c)))
    ]
    if not ids:
        return []
    customers = _customers(ctx, brand_id, identities)
    wanted = {(i.type, i.value) for i in identities}
    for c in customers:
        wanted |= {(d["type"], d["value"]) for d in oneid.identifiers_of(ctx, brand_id, c)}
    values = sorted({v for _, v in wanted})
    with ctx.sessions() as s:
        q = select(CampaignHelpRow).where(CampaignHelpRow.campaign_id.in_(ids), CampaignHelpRow.state == state)
        by_value = s.scalars(q.where(CampaignHelpRow.helper_id_value.in_(values))).all()
        by_customer = (
            s.scalars(q.where(CampaignHelpRow.helper_customer_id.in_(list(customers)))).all() if customers else []
        )
    seen: dict[int, CampaignHelpRow] = {}
    for h in [*by_value, *by_customer]:
        if (h.helper_id_type, h.helper_id_value) in wanted or h.helper_customer_id in customers:
            seen[h.id] = h
    return [seen[k] for k in sorted(seen)]


def _revocable(cd: CampaignDefinition) -> bool:
    return cd.carrier.kind == "wecom_guide" and cd.anti_abuse.min_keep_days > 0


def on_carrier_lost(
    ctx: Context, brand_id: str, identities: list[Identity], guide_id: str, at: datetime | None = None
) -> int:
    """The person deleted the guide (删粉): their counted helps that went through a ``wecom_guide`` carrier to
    that guide within the campaign's ``min_keep_days`` stop counting (``carrier_left``), and rewards the sharer
    no longer qualifies for are clawed back per the campaign's ``clawback`` rule. Returns helps revoked."""
    at = at or utcnow()
    n = 0
    for h in _pending_helps(ctx, brand_id, identities, None, state="counted"):
        row = get_row(ctx, brand_id, h.campaign_id)
        cd = definition_of(row)
        keep = cd.anti_abuse.min_keep_days
        if cd.carrier.kind != "wecom_guide" or keep <= 0 or h.guide_id != guide_id or h.counted_at is None:
            continue
        if at - h.counted_at >= timedelta(days=keep):
            continue
        n += revoke_help(ctx, brand_id, h.id, "carrier_left")
    return n


def revoke_help(ctx: Context, brand_id: str, help_id: int, reason: str) -> int:
    """Stop counting a help (``revoked`` with ``reason``; its person keys stay, so they cannot help again) and
    claw back tier rewards the sharer no longer reaches (per the campaign's ``clawback``). Returns 1 if revoked."""
    with ctx.sessions() as s, s.begin():
        h = s.get(CampaignHelpRow, help_id)
        if h is None or h.brand_id != brand_id or h.state not in ("counted", "pending_carrier"):
            return 0
        was = h.state
        h.state, h.reason, h.revoked_at = "revoked", reason, utcnow()
        col = CampaignParticipantRow.helps_counted if was == "counted" else CampaignParticipantRow.helps_pending
        s.execute(update(CampaignParticipantRow).where(CampaignParticipantRow.id == h.sharer_id).values({col: col - 1}))
        sharer_id, campaign_id = h.sharer_id, h.campaign_id
    if was == "counted" and sharer_id:
        _claw_unreached(ctx, brand_id, campaign_id, sharer_id, reason)
    return 1


def _claw_unreached(ctx: Context, brand_id: str, campaign_id: str, sharer_id: str, reason: str) -> None:
    from siyu.stores.state.campaign_models import CampaignRewardRow

    row = get_row(ctx, brand_id, campaign_id)
    cd = definition_of(row)
    with ctx.sessions() as s:
        p = s.get(CampaignParticipantRow, sharer_id)
        assert p is not None
        tiers = cd.tiers(p.variant)
        still = len([t for t in tiers if t.threshold <= p.helps_counted])
        rewards = s.scalars(
            select(CampaignRewardRow).where(
                CampaignRewardRow.campaign_id == campaign_id,
                CampaignRewardRow.participant_id == sharer_id,
                CampaignRewardRow.what.like("tier:%"),
                CampaignRewardRow.status == "granted",
            )
        ).all()
    for r in rewards:
        if int(r.what.split(":")[1]) >= still:
            payouts.claw_back(ctx, brand_id, r.id, f"help revoked: {reason}", cd.anti_abuse.clawback)
    with ctx.sessions() as s, s.begin():
        s.execute(
            update(CampaignParticipantRow).where(CampaignParticipantRow.id == sharer_id).values(tiers_reached=still)
        )
