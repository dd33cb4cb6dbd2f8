"""Who a public person is: an identity (type + value, e.g. phone, unionid, external_userid) mapped to the brand's
canonical customer by OneID, and the keys that stand for the person in a campaign.

A person's keys are ``c:<customer id>`` (when OneID knows them) and ``i:<type>:<value>``; one help per person
is enforced on every key, so two identities OneID merged into one customer cannot both help. Observations are
recorded for OneID (source kind ``campaign``): at once for participants (``identify(..., now=True)``, a sharer
needs a customer id for rewards), in batches for helpers (``flush_observations``), after which helps are linked
to their customers and a help by a person who turns out to have helped already is revoked (``duplicate_person``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from siyu.domain.identity import IdentifierError, normalize
from siyu.domain.models import Identity
from siyu.errors import SiyuError
from siyu.services import oneid
from siyu.services.context import Context
from siyu.stores.state.campaign_models import CampaignHelpKeyRow, CampaignHelpRow, CampaignParticipantRow

log = logging.getLogger(__name__)
SOURCE_KIND = "campaign"


@dataclass(frozen=True)
class Person:
    """A resolved person: ``key`` (primary: the customer key when known), every key, the identity."""

    identity: Identity
    customer_id: str | None

    @property
    def identity_key(self) -> str:
        return f"i:{self.identity.type}:{self.identity.value}"

    @property
    def key(self) -> str:
        return f"c:{self.customer_id}" if self.customer_id else self.identity_key

    @property
    def keys(self) -> frozenset[str]:
        return frozenset({self.identity_key} | ({f"c:{self.customer_id}"} if self.customer_id else set()))


def parse_identity(id_type: str, value: Any) -> Identity:
    """Normalise a public identity (``wecom_external_userid`` is accepted for ``external_userid``)."""
    id_type = {"wecom_external_userid": "external_userid"}.get(id_type, id_type)
    try:
        return normalize(id_type, value)
    except IdentifierError as err:
        raise SiyuError(str(err), "identity") from err


PERSON_TTL = 60.0  # seconds a person's OneID answer is reused by the public pages and the help path
PERSON_CACHE_SIZE = 100_000


class _People:
    """A bounded LRU of (brand, identity) → (time, customer id) — the OneID look-up costs a warehouse query."""

    def __init__(self) -> None:
        self.items: OrderedDict[tuple[str, str, str], tuple[float, str | None]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> tuple[bool, str | None]:
        with self.lock:
            hit = self.items.get(key)
            if hit is None or time.monotonic() - hit[0] > PERSON_TTL:
                return False, None
            self.items.move_to_end(key)
            return True, hit[1]

    def put(self, key: tuple[str, str, str], customer_id: str | None) -> None:
        with self.lock:
            self.items[key] = (time.monotonic(), customer_id)
            self.items.move_to_end(key)
            while len(self.items) > PERSON_CACHE_SIZE:
                self.items.popitem(last=False)

    def forget(self, brand_id: str, ids: list[tuple[str, str]]) -> None:
        with self.lock:
            for t, v in ids:
                self.items.pop((brand_id, t, v), None)


def _people(ctx: Context) -> _People:
    got = ctx.extras.get("campaign_people")
    if not isinstance(got, _People):
        got = ctx.extras.setdefault("campaign_people", _People())
    return got


def person(ctx: Context, brand_id: str, identity: Identity, *, fresh: bool = False) -> Person:
    """The person behind an identity as OneID knows them (customer id None for someone new). The answer is
    reused for ``PERSON_TTL`` seconds (``fresh``: ask OneID now): a merge or a first resolution made elsewhere
    meanwhile is caught by ``flush_observations`` (the ``campaigns.tick`` job), which links helps to their
    customer and revokes a person's second help."""
    key = (brand_id, identity.type, identity.value)
    cache = _people(ctx)
    if not fresh:
        hit, cid = cache.get(key)
        if hit:
            return Person(identity, cid)
    cid = oneid.customer_of(ctx, brand_id, identity)
    cache.put(key, cid)
    return Person(identity, cid)


def identify(ctx: Context, brand_id: str, identity: Identity, ref: str, *, now: bool) -> Person:
    """``person`` (asked fresh); for someone unknown, record the observation and (``now``) resolve it so they
    get a customer id."""
    p = person(ctx, brand_id, identity, fresh=True)
    if p.customer_id is not None or not now:
        return p
    with oneid.observation_transaction(ctx) as tx:
        oneid.add_observations(tx, brand_id, [oneid.Observation(SOURCE_KIND, ref, oneid.now(), (identity,))])
    oneid.resolve_pending(ctx, brand_id)
    return person(ctx, brand_id, identity, fresh=True)


def flush_observations(ctx: Context, brand_id: str, limit: int = 50_000) -> dict[str, int]:
    """Record helpers' identities for OneID (one transaction), resolve them, then link helps to customers:
    each accepted help gets its ``c:`` key; a help whose person already helped under another identity is
    revoked as ``duplicate_person`` (the earlier help stands). Returns counts."""
    with ctx.sessions() as s:
        rows = s.execute(
            select(CampaignHelpRow.id, CampaignHelpRow.helper_id_type, CampaignHelpRow.helper_id_value)
            .where(CampaignHelpRow.brand_id == brand_id, CampaignHelpRow.observed.is_(False))
            .order_by(CampaignHelpRow.id)
            .limit(limit)
        ).all()
    if rows:
        obs = [oneid.Observation(SOURCE_KIND, f"campaign-help:{i}", oneid.now(), (Identity(t, v),)) for i, t, v in rows]
        with oneid.observation_transaction(ctx) as tx:
            oneid.add_observations(tx, brand_id, obs)
        ids = [r[0] for r in rows]
        with ctx.sessions() as s, s.begin():
            for k in range(0, len(ids), 500):
                s.execute(update(CampaignHelpRow).where(CampaignHelpRow.id.in_(ids[k : k + 500])).values(observed=True))
        oneid.resolve_pending(ctx, brand_id)
        _people(ctx).forget(brand_id, [(t, v) for _, t, v in rows])  # OneID knows them now
    return {"observed": len(rows), **link_customers(ctx, brand_id)}


def _owners(ctx: Context, brand_id: str, ids: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The customer of each (type, value) OneID has resolved, in one warehouse query."""
    if not ids:
        return {}
    import pyarrow as pa

    table = pa.table({"t": [t for t, _ in ids], "v": [v for _, v in ids]})
    cur = ctx.warehouse.cursor()
    name = f"_campaign_ids_{uuid.uuid4().hex[:8]}"
    cur.register(name, table)
    try:
        rows = cur.execute(
            f"SELECT i.id_type, i.id_value, i.customer_id FROM identities i JOIN {name} w "
            "ON i.id_type = w.t AND i.id_value = w.v WHERE i.brand_id = ?",
            [brand_id],
        ).fetchall()
    finally:
        cur.unregister(name)
    return {(str(t), str(v)): str(c) for t, v, c in rows}


def link_customers(ctx: Context, brand_id: str) -> dict[str, int]:
    """Fill ``helper_customer_id`` / ``customer_id`` where OneID now knows the person (or moved them to another
    customer by a merge); add the ``c:`` key of each accepted help (a clash = the person helped twice: the later
    help is revoked)."""
    from siyu.services.campaigns.participation import revoke_help

    linked = dup = 0
    with ctx.sessions() as s:
        helps = s.execute(
            select(
                CampaignHelpRow.id,
                CampaignHelpRow.campaign_id,
                CampaignHelpRow.helper_id_type,
                CampaignHelpRow.helper_id_value,
                CampaignHelpRow.state,
                CampaignHelpRow.helper_customer_id,
            ).where(
                CampaignHelpRow.brand_id == brand_id,
                CampaignHelpRow.helper_customer_id.is_(None)
                | CampaignHelpRow.state.in_(("counted", "pending_carrier")),
            )
        ).all()
        parts = s.execute(
            select(CampaignParticipantRow.id, CampaignParticipantRow.id_type, CampaignParticipantRow.id_value).where(
                CampaignParticipantRow.brand_id == brand_id, CampaignParticipantRow.customer_id.is_(None)
            )
        ).all()
    owners = _owners(ctx, brand_id, {(t, v) for _, t, v in parts} | {(h[2], h[3]) for h in helps})
    for pid, t, v in parts:
        cid = owners.get((t, v))
        if cid:
            with ctx.sessions() as s, s.begin():
                s.execute(
                    update(CampaignParticipantRow).where(CampaignParticipantRow.id == pid).values(customer_id=cid)
                )
    for hid, camp, t, v, state, had in sorted(helps):
        cid = owners.get((t, v))
        if not cid or cid == had:  # unknown, or unchanged (a merge moves people to the surviving customer)
            continue
        linked += 1
        with ctx.sessions() as s, s.begin():
            s.execute(update(CampaignHelpRow).where(CampaignHelpRow.id == hid).values(helper_customer_id=cid))
        if state not in ("counted", "pending_carrier"):
            continue
        try:
            with ctx.sessions() as s, s.begin():
                s.add(CampaignHelpKeyRow(campaign_id=camp, key=f"c:{cid}", help_id=hid))
        except IntegrityError:
            with ctx.sessions() as s:
                first = s.scalar(
                    select(CampaignHelpKeyRow.help_id).where(
                        CampaignHelpKeyRow.campaign_id == camp, CampaignHelpKeyRow.key == f"c:{cid}"
                    )
                )
            if first != hid:
                dup += 1
                revoke_help(ctx, brand_id, hid, "duplicate_person")
    return {"linked": linked, "duplicates_revoked": dup}
