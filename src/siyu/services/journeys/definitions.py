"""Journeys (SOP / 客户旅程) as saved objects: create, edit (a new version per change), validate, publish, pause.

A journey is ``draft`` until published. Publishing freezes the current version as what new entries run
(``published_version``); customers already inside stay on the version they entered with until they leave
(drain). ``paused`` holds every customer where they are (no step runs, no new entries); ``resume`` goes on;
``stopped`` ends entries for good (they exit with reason ``stopped``). Guides may read journeys, not change them.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from siyu.domain.journey import JourneyDefinition, parse_journey
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Conflict, Forbidden, NotFound, SiyuError
from siyu.stores.state.journey_models import JourneyEntryRow, JourneyRow, JourneyVersionRow
from siyu.stores.state.models import utcnow

STATUSES = ("draft", "active", "paused", "stopped")
MAX_JOURNEYS_PER_BRAND = 500


@dataclass(frozen=True)
class JourneyInfo:
    id: str
    brand_id: str
    name: str
    description: str
    status: str
    version: int
    published_version: int | None
    published_at: datetime | None
    definition: dict[str, Any]
    created_by: str
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("published_at", "created_at", "updated_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


def require_editor(user: User) -> None:
    if user.role == Role.GUIDE:
        raise Forbidden("guides may view journeys but not change them; ask an operator or admin", "role")


def validate(definition: Any) -> JourneyDefinition:
    """Parse a definition; ``JourneyError.errors`` lists {node_id, field, path, message}."""
    return parse_journey(definition)


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise SiyuError("name is required (1–200 characters), e.g. 生日关怀", "name")
    return name


def _row(ctx: Context, brand_id: str, journey_id: str) -> JourneyRow:
    with ctx.sessions() as s:
        row = s.get(JourneyRow, journey_id)
    if row is None or row.brand_id != brand_id:
        raise NotFound(f"journey {journey_id!r} not found", "journey_id")
    return row


def definition_of(ctx: Context, journey_id: str, version: int) -> dict[str, Any]:
    with ctx.sessions() as s:
        d = s.scalar(
            select(JourneyVersionRow.definition).where(
                JourneyVersionRow.journey_id == journey_id, JourneyVersionRow.version == version
            )
        )
    if d is None:
        raise NotFound(f"journey {journey_id!r} has no version {version}", "version")
    return dict(d)


def _info(ctx: Context, row: JourneyRow) -> JourneyInfo:
    return JourneyInfo(
        row.id,
        row.brand_id,
        row.name,
        row.description,
        row.status,
        row.version,
        row.published_version,
        row.published_at,
        definition_of(ctx, row.id, row.version),
        row.created_by,
        row.created_at,
        row.updated_at,
    )


def create_journey(ctx: Context, user: User, name: str, definition: Any, description: str = "") -> JourneyInfo:
    """Save a new journey (draft, version 1) after validating its definition."""
    require_editor(user)
    name = _clean_name(name)
    jd = validate(definition)
    with ctx.sessions() as s, s.begin():
        n = len(list(s.scalars(select(JourneyRow.id).where(JourneyRow.brand_id == user.brand_id))))
        if n >= MAX_JOURNEYS_PER_BRAND:
            raise SiyuError(f"a brand may have at most {MAX_JOURNEYS_PER_BRAND} journeys; stop or reuse one", "name")
        if s.scalar(select(JourneyRow.id).where(JourneyRow.brand_id == user.brand_id, JourneyRow.name == name)):
            raise Conflict(f"a journey named {name!r} exists already; choose another name", "name")
        jid = "j_" + uuid.uuid4().hex[:12]
        now = utcnow()
        s.add(
            JourneyRow(
                id=jid,
                brand_id=user.brand_id,
                name=name,
                description=description[:2000],
                status="draft",
                version=1,
                cursor={},
                created_by=user.username,
                created_at=now,
                updated_at=now,
            )
        )
        s.flush()
        s.add(
            JourneyVersionRow(
                journey_id=jid,
                version=1,
                definition=jd.model_dump(mode="json", by_alias=True),
                created_by=user.username,
            )
        )
    return get_journey(ctx, user, jid)


def get_journey(ctx: Context, user: User, journey_id: str) -> JourneyInfo:
    return _info(ctx, _row(ctx, user.brand_id, journey_id))


def list_journeys(ctx: Context, user: User) -> list[JourneyInfo]:
    with ctx.sessions() as s:
        rows = list(
            s.scalars(select(JourneyRow).where(JourneyRow.brand_id == user.brand_id).order_by(JourneyRow.created_at))
        )
    return [_info(ctx, r) for r in rows]


def update_journey(
    ctx: Context,
    user: User,
    journey_id: str,
    name: str | None = None,
    definition: Any = None,
    description: str | None = None,
) -> JourneyInfo:
    """Rename / redescribe, or save a changed definition as a new version (publish it to make it live)."""
    require_editor(user)
    row = _row(ctx, user.brand_id, journey_id)
    jd = validate(definition) if definition is not None else None
    with ctx.sessions() as s, s.begin():
        r = s.get(JourneyRow, journey_id)
        assert r is not None
        if name is not None:
            r.name = _clean_name(name)
        if description is not None:
            r.description = description[:2000]
        if jd is not None:
            new = jd.model_dump(mode="json", by_alias=True)
            if new != definition_of(ctx, journey_id, row.version):
                r.version = row.version + 1
                s.add(
                    JourneyVersionRow(
                        journey_id=journey_id, version=r.version, definition=new, created_by=user.username
                    )
                )
        r.updated_at = utcnow()
    return get_journey(ctx, user, journey_id)


def versions(ctx: Context, user: User, journey_id: str) -> list[dict[str, Any]]:
    _row(ctx, user.brand_id, journey_id)
    with ctx.sessions() as s:
        rows = list(
            s.scalars(
                select(JourneyVersionRow)
                .where(JourneyVersionRow.journey_id == journey_id)
                .order_by(JourneyVersionRow.version)
            )
        )
    return [
        {
            "version": r.version,
            "definition": r.definition,
            "created_by": r.created_by,
            "created_at": r.created_at.isoformat(),
            "published_at": r.published_at.isoformat() if r.published_at else None,
        }
        for r in rows
    ]


def publish(ctx: Context, user: User, journey_id: str, now: datetime | None = None) -> JourneyInfo:
    """Make the current version live (status active). Customers inside stay on their version (drain)."""
    require_editor(user)
    row = _row(ctx, user.brand_id, journey_id)
    if row.status == "stopped":
        raise Conflict("a stopped journey cannot be published again; copy it into a new journey", "status")
    validate(definition_of(ctx, journey_id, row.version))  # still valid (e.g. segment DSL changes)
    now = now or utcnow()
    with ctx.sessions() as s, s.begin():
        r = s.get(JourneyRow, journey_id)
        assert r is not None
        first = r.published_version is None
        r.published_version = r.version
        r.published_at = now
        r.status = "active"
        r.updated_at = now
        if first:
            r.cursor = {"since": now.isoformat()}
        s.execute(
            update(JourneyVersionRow)
            .where(JourneyVersionRow.journey_id == journey_id, JourneyVersionRow.version == r.version)
            .values(published_at=now)
        )
    return get_journey(ctx, user, journey_id)


def set_status(ctx: Context, user: User, journey_id: str, status: str) -> JourneyInfo:
    """pause (hold everyone where they are), resume (active again) or stop (everyone exits)."""
    require_editor(user)
    row = _row(ctx, user.brand_id, journey_id)
    allowed = {"paused": ("active",), "active": ("paused",), "stopped": ("active", "paused", "draft")}
    if status not in allowed:
        raise SiyuError(f"status must be one of {', '.join(allowed)}", "status")
    if row.status not in allowed[status]:
        raise Conflict(f"a {row.status} journey cannot become {status}", "status")
    now = utcnow()
    with ctx.sessions() as s, s.begin():
        r = s.get(JourneyRow, journey_id)
        assert r is not None
        r.status = status
        r.updated_at = now
        if status == "stopped":
            s.execute(
                update(JourneyEntryRow)
                .where(JourneyEntryRow.journey_id == journey_id, JourneyEntryRow.status == "active")
                .values(status="exited", exited_at=now, exit_reason="stopped", wake_at=None)
            )
    return get_journey(ctx, user, journey_id)
