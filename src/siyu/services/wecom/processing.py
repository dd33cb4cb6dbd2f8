"""Process stored WeCom callbacks in arrival order, each exactly once (Huey task ``process_pending``).

A row is claimed (pending → processing), applied in one warehouse transaction (idempotent writes), then marked
done.  A process killed mid-way leaves the row ``processing`` with its owner (pid/token): the next run releases
rows whose owner is dead, ``recover`` (run by the schedule every minute) rows stuck longer than ``STUCK_AFTER``;
re-applying a row changes nothing already applied (relation upserts, observations keyed by the callback id).  A
failing row is retried up to ``MAX_ATTEMPTS`` times, then kept as ``error`` with the reason.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from siyu.connectors.wecom.errors import WeComError
from siyu.domain import wecom_events as ev
from siyu.errors import NotFound, SiyuError
from siyu.services.context import Context
from siyu.services.wecom import relations as rel
from siyu.services.wecom.apply import apply as apply_event
from siyu.services.wecom.config import client_for, get_config
from siyu.stores.state.wecom_models import WeComCallbackRow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
STUCK_AFTER = timedelta(minutes=5)
OWNER = f"{os.getpid()}/{uuid.uuid4().hex[:12]}"  # who claimed a row: this process (pid / random token)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _brand_lock(brand_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(brand_id, threading.Lock())


def _pair(row: WeComCallbackRow) -> tuple[str, str]:
    return row.user_id, row.external_user_id


def _claim(ctx: Context, brand_id: str, skip: set[int], blocked: set[tuple[str, str]]) -> WeComCallbackRow | None:
    """The oldest pending row not in ``skip`` and not about a ``blocked`` (userid, external_userid) pair (a failed
    earlier event of the same pair must be applied first), switched to processing; None when there is none."""
    with ctx.sessions() as s, s.begin():
        candidates = s.execute(
            select(WeComCallbackRow.id, WeComCallbackRow.user_id, WeComCallbackRow.external_user_id)
            .where(WeComCallbackRow.brand_id == brand_id, WeComCallbackRow.status == "pending")
            .order_by(WeComCallbackRow.id)
            .limit(len(skip) + 100)
        ).all()
        row_id = next((i for i, u, e in candidates if i not in skip and (not u or (u, e) not in blocked)), None)
        if row_id is None:
            return None
        done = s.execute(
            update(WeComCallbackRow)
            .where(WeComCallbackRow.id == row_id, WeComCallbackRow.status == "pending")
            .values(
                status="processing",
                attempts=WeComCallbackRow.attempts + 1,
                processed_at=_now(),
                result=f"processing by {OWNER}",
            )
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return s.get(WeComCallbackRow, row_id)


def _finish(ctx: Context, row_id: int, status: str, result: str) -> None:
    with ctx.sessions() as s, s.begin():
        s.execute(
            update(WeComCallbackRow)
            .where(WeComCallbackRow.id == row_id)
            .values(status=status, result=result[:2000], processed_at=_now())
        )


def process_pending(ctx: Context, brand_id: str, limit: int = 10_000) -> int:
    """Process the brand's pending callbacks in arrival order; returns how many were processed."""
    with _brand_lock(brand_id):
        try:
            cfg = get_config(ctx, brand_id)
        except NotFound:
            return 0
        release_dead(ctx, brand_id)
        client = client_for(cfg) if cfg.secret else None
        n = observed = 0
        lookups = rel.Lookups(brand_id)
        skip: set[int] = set()
        blocked: set[tuple[str, str]] = set()
        while n < limit:
            row = _claim(ctx, brand_id, skip, blocked)
            if row is None:
                break
            n += 1
            try:
                event = ev.parse_event(row.xml)
                result, obs = apply_event(ctx, brand_id, event, f"wecom-callback:{row.id}", client, lookups)
                observed += obs
                _finish(ctx, row.id, "done", result)
            except Exception as err:  # any failure: keep the row for a later attempt, go on with the others
                status = "error" if row.attempts >= MAX_ATTEMPTS else "pending"
                expected = isinstance(err, SiyuError | WeComError)
                log.log(
                    logging.WARNING if expected else logging.ERROR,
                    "WeCom callback #%s (%s) failed, attempt %s: %s",
                    row.id,
                    row.change_type,
                    row.attempts,
                    err,
                    exc_info=not expected,
                )
                _finish(ctx, row.id, status, str(err))
                if status == "pending":  # retried by the next run; later events of the same pair wait for it
                    skip.add(row.id)
                    blocked.add(_pair(row))
        if client is not None:
            client.close()
        if observed:
            from siyu.services import oneid

            oneid.resolve_pending(ctx, brand_id)
        if n:  # pool leads whose customer just added a guide leave the pool, owned by that guide
            from siyu.services.guide_work.pool_feed import settle_quietly

            settle_quietly(ctx, brand_id, _now() - timedelta(days=1))  # relations added lately only
        return n


def _alive(owner: str) -> bool:
    """Whether the process that claimed a row (``pid/token``) may still be working on it."""
    if owner == OWNER:
        return True
    try:
        os.kill(int(owner.split("/")[0]), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def release_dead(ctx: Context, brand_id: str) -> int:
    """Rows a dead process left ``processing`` (kill -9 mid-way) go back to pending at once."""
    with ctx.sessions() as s, s.begin():
        rows = s.execute(
            select(WeComCallbackRow.id, WeComCallbackRow.result).where(
                WeComCallbackRow.brand_id == brand_id, WeComCallbackRow.status == "processing"
            )
        ).all()
        dead = [i for i, res in rows if not _alive((res or "").removeprefix("processing by "))]
        if dead:
            s.execute(update(WeComCallbackRow).where(WeComCallbackRow.id.in_(dead)).values(status="pending"))
            log.warning("WeCom callbacks %s were left processing by a dead process; processing them again", dead)
    return len(dead)


def recover(ctx: Context) -> int:
    """Put rows stuck in processing longer than STUCK_AFTER back to pending and process every brand's backlog
    (rows of dead processes are released by ``process_pending`` itself)."""
    with ctx.sessions() as s, s.begin():
        stuck = s.execute(
            update(WeComCallbackRow)
            .where(WeComCallbackRow.status == "processing", WeComCallbackRow.processed_at < _now() - STUCK_AFTER)
            .values(status="pending")
        ).rowcount  # type: ignore[attr-defined]
        brands = list(
            s.scalars(select(WeComCallbackRow.brand_id).where(WeComCallbackRow.status == "pending").distinct())
        )
    for b in brands:
        process_pending(ctx, b)
    return int(stuck or 0)
