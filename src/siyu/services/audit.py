"""The audit log of sensitive actions: exports, OneID merges and splits, inheritance transfers, mass sends, PII
reveals, secret rotation (write keys, WeCom / provider credentials), user and role changes. ``record`` never
stores a secret: pass ids and counts in ``detail``, not keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.stores.state.audit_models import AuditRow

ACTIONS = (
    "export",
    "oneid.split",
    "oneid.merge",
    "pii.reveal",
    "pii.settings",
    "transfer.start",
    "mass_send.create",
    "mass_send.dispatch",
    "write_key.create",
    "write_key.revoke",
    "wecom.config",
    "wecom.verify_file.set",
    "wecom.verify_file.clear",
    "messaging.provider",
    "user.create",
)
MAX_LIMIT = 1000


def record(
    ctx: Context,
    brand_id: str,
    actor: User | str,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> int:
    """Append one entry; returns its id. ``actor`` is the user acting, or a name such as ``"cli"``."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; add it to siyu.services.audit.ACTIONS")
    name, role = (actor.username, actor.role.value) if isinstance(actor, User) else (actor, "")
    row = AuditRow(
        brand_id=brand_id,
        actor=name[:128],
        actor_role=role,
        action=action,
        target=str(target)[:200],
        detail=detail or {},
    )
    with ctx.sessions() as s, s.begin():
        s.add(row)
        s.flush()
        return int(row.id)


def entries(
    ctx: Context,
    brand_id: str,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The brand's entries, newest first (optionally one action, from ``since``)."""
    if action is not None and action not in ACTIONS:
        raise SiyuError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}", "action")
    if not 1 <= limit <= MAX_LIMIT:
        raise SiyuError(f"limit must be 1..{MAX_LIMIT}", "limit")
    q = select(AuditRow).where(AuditRow.brand_id == brand_id)
    if action:
        q = q.where(AuditRow.action == action)
    if since:
        q = q.where(AuditRow.at >= since)
    with ctx.sessions() as s:
        rows = s.scalars(q.order_by(AuditRow.id.desc()).limit(limit)).all()
    return [
        {
            "id": r.id,
            "at": r.at.isoformat(),
            "actor": r.actor,
            "actor_role": r.actor_role,
            "action": r.action,
            "target": r.target,
            "detail": r.detail,
        }
        for r in rows
    ]
