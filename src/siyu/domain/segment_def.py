"""The customer-segment (客户分群) definition language: JSON conditions typed with pydantic (pure, no I/O).

A definition is one condition; ``and`` / ``or`` / ``not`` nest conditions.  Every condition object has a
``kind`` naming its type (the discriminator).  ``parse_definition`` validates raw JSON and raises
``DefinitionError`` whose messages name the JSON path of the bad field (``conditions[1].window_days``) and the
fix.  Compiled to one Ibis expression by ``siyu.analytics.segments``; documented in ``docs/segments.md``.

(Not to be confused with ``siyu.domain.segment``: the Segment-compatible tracking API.)

Adding a kind (e.g. CLV fields once the CLV issue lands): a model with ``kind: Literal["clv"]`` here, added to
``Condition`` below, and a compiler registered in ``siyu.analytics.segments.COMPILERS``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from siyu.domain.customer_classes import (  # noqa: F401 - re-exported for the console
    AIPL_STAGES,
    LIFECYCLE_STAGES,
    RFM_CLASSES,
    AiplStage,
    LifecycleStage,
    RfmClass,
)
from siyu.errors import SiyuError

# ---- comparisons -------------------------------------------------------------------------------------------

NumberOp = Literal["eq", "ne", "gt", "gte", "lt", "lte", "between"]
ValueOp = Literal[
    "eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "contains", "starts_with", "exists", "not_exists"
]
Scalar = str | int | float | bool
Number = int | float
NUMBER_OPS: tuple[str, ...] = ("eq", "ne", "gt", "gte", "lt", "lte", "between")

# customers-table columns a trait condition may name, with their type ("traits.<key>" reads the traits JSON)
CUSTOMER_FIELDS: dict[str, str] = {
    "customer_id": "string",
    "name": "string",
    "phone": "string",
    "email": "string",
    "gender": "string",
    "city": "string",
    "birthday": "date",
    "created_at": "timestamp",
    "updated_at": "timestamp",
}
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z_][A-Za-z0-9_\-]*)*$")
_ID_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

WindowDays = Annotated[int, Field(ge=1, le=3660)]
Names = Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(min_length=1, max_length=1000)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_comparison(op: str, value: Any, numeric: bool) -> None:
    """Raise ValueError (with the fix) when ``value`` does not suit ``op``."""
    if op in ("exists", "not_exists"):
        if value is not None:
            raise ValueError(f"[value] op {op!r} takes no value; remove 'value'")
        return
    if value is None:
        raise ValueError(f"[value] op {op!r} needs a 'value'")
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError("[value] op 'between' needs 'value': [low, high] (both ends included)")
        items = value
    elif op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise ValueError(f'[value] op {op!r} needs \'value\': a non-empty list, e.g. ["上海", "杭州"]')
        items = value
    else:
        if isinstance(value, list):
            raise ValueError(f"[value] op {op!r} compares with one value; use 'in' for a list")
        items = [value]
    if op in ("contains", "starts_with") and not isinstance(value, str):
        raise ValueError(f"[value] op {op!r} needs a text 'value'")
    for v in items:
        if isinstance(v, list | dict):
            raise ValueError("[value] values must be text, numbers or true/false")
        if numeric and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise ValueError(f"[value] 'value' must be a number (got {v!r})")


# ---- leaf conditions ---------------------------------------------------------------------------------------


class TraitCondition(_Model):
    """A customers-table column or a ``traits.<key>`` of the traits JSON compared with a value."""

    kind: Literal["trait"]
    field: str = Field(min_length=1, max_length=200)
    op: ValueOp = "eq"
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _check(self) -> TraitCondition:
        if self.field.startswith("traits."):
            if not _KEY.match(self.field.removeprefix("traits.")):
                raise ValueError(
                    "[field] 'field' traits.<key> needs a key of letters, digits and _ (e.g. traits.level)"
                )
        elif self.field not in CUSTOMER_FIELDS:
            raise ValueError(
                f"[field] 'field' {self.field!r} is not a customer field; use one of {', '.join(CUSTOMER_FIELDS)} "
                "or traits.<key>"
            )
        kind = CUSTOMER_FIELDS.get(self.field, "json")
        if self.op in ("contains", "starts_with") and kind in ("date", "timestamp"):
            raise ValueError(f"[op] op {self.op!r} applies to text; compare dates with eq/gt/gte/lt/lte/between")
        check_comparison(self.op, self.value, numeric=False)
        if kind in ("date", "timestamp"):
            items = self.value if isinstance(self.value, list) else [self.value]
            for v in items:
                if v is None:
                    continue
                try:
                    datetime.fromisoformat(str(v)) if kind == "timestamp" else date.fromisoformat(str(v))
                except ValueError:
                    raise ValueError(f"[value] 'value' {v!r} is not a date; send YYYY-MM-DD, e.g. 1990-05-01") from None
        return self


class PropertyFilter(_Model):
    """A condition on one key of an event's ``properties`` JSON (``a.b`` reads nested keys)."""

    property: str = Field(min_length=1, max_length=200)
    op: ValueOp = "eq"
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _check(self) -> PropertyFilter:
        if not _KEY.match(self.property):
            raise ValueError("[property] 'property' must be a key of letters, digits and _ (a.b for nested keys)")
        check_comparison(self.op, self.value, numeric=False)
        return self


class EventCondition(_Model):
    """How often (count) or how much (sum of a numeric property) a customer did an event in a window."""

    kind: Literal["event"]
    event: str | None = Field(default=None, max_length=200)
    type: Literal["track", "page", "screen", "identify"] = "track"
    where: list[PropertyFilter] = Field(default_factory=list, max_length=20)
    window_days: WindowDays | None = None
    measure: Literal["count", "sum"] = "count"
    property: str | None = Field(default=None, max_length=200)
    op: NumberOp = "gte"
    value: Number | list[Number] = 1

    @model_validator(mode="after")
    def _check(self) -> EventCondition:
        if self.type == "track" and not self.event:
            raise ValueError("[event] a track event condition needs 'event' (the event name, e.g. \"Message Clicked\")")
        if self.measure == "sum" and not self.property:
            raise ValueError(
                "[property] measure 'sum' needs 'property': the numeric property to add up (e.g. \"price\")"
            )
        if self.measure == "count" and self.property:
            raise ValueError("[property] 'property' is only used with measure 'sum'; remove it or set measure to 'sum'")
        if self.property and not _KEY.match(self.property):
            raise ValueError("[property] 'property' must be a key of letters, digits and _")
        check_comparison(self.op, self.value, numeric=True)
        return self


class OrderCondition(_Model):
    """Order statistics (refunded/cancelled excluded): count, sum, avg, max, days since the last / first order."""

    kind: Literal["orders"]
    measure: Literal["count", "sum", "avg", "max", "last_days_ago", "first_days_ago"] = "count"
    window_days: WindowDays | None = None
    channels: list[str] = Field(default_factory=list, max_length=100)
    stores: list[str] = Field(default_factory=list, max_length=100)
    guides: list[str] = Field(default_factory=list, max_length=100)
    op: NumberOp = "gte"
    value: Number | list[Number] = 1

    @model_validator(mode="after")
    def _check(self) -> OrderCondition:
        check_comparison(self.op, self.value, numeric=True)
        if self.measure in ("last_days_ago", "first_days_ago"):
            items = self.value if isinstance(self.value, list) else [self.value]
            if any(v < 0 or v != int(v) for v in items):
                raise ValueError("[value] days ago must be whole numbers ≥ 0")
            if self.op == "ne":
                raise ValueError("[op] op 'ne' is not supported for days ago; use lt / gt (or not)")
        return self


class TagCondition(_Model):
    """Has any (or all) of the tags, named by tag_id or tag name."""

    kind: Literal["tag"]
    tags: Names
    match: Literal["any", "all"] = "any"


class IdentityCondition(_Model):
    """Has at least one identifier of a type (phone, unionid, external_userid, member_id, ...)."""

    kind: Literal["identity"]
    id_type: str

    @model_validator(mode="after")
    def _check(self) -> IdentityCondition:
        if not _ID_TYPE.match(self.id_type):
            raise ValueError(
                "[id_type] 'id_type' is an identifier type in lowercase, e.g. phone, unionid, external_userid"
            )
        return self


RelationStatus = Literal["active", "ever", "lost"]


class GuideCondition(_Model):
    """Has a WeCom relation with one of the guides (active on the date, ever, or lost by then)."""

    kind: Literal["guide"]
    guides: Names
    status: RelationStatus = "active"


class StoreCondition(_Model):
    """Has a WeCom relation with a guide of one of the stores (active, ever or lost)."""

    kind: Literal["store"]
    stores: Names
    status: RelationStatus = "active"


class ChannelCondition(_Model):
    """Joined the private domain through one of the acquisition channels (channel of the first relation)."""

    kind: Literal["channel"]
    channels: Names


class GroupCondition(_Model):
    """Is (active) or was (ever) a member of one of the customer groups (any group when ``groups`` is empty)."""

    kind: Literal["group"]
    groups: list[str] = Field(default_factory=list, max_length=100)
    status: Literal["active", "ever"] = "active"


class RfmCondition(_Model):
    """In one of the RFM classes (mean split), optionally with quintile scores, over an order window."""

    kind: Literal["rfm"]
    classes: list[RfmClass] = Field(default_factory=list, max_length=8)
    r_scores: list[Annotated[int, Field(ge=1, le=5)]] = Field(default_factory=list)
    f_scores: list[Annotated[int, Field(ge=1, le=5)]] = Field(default_factory=list)
    m_scores: list[Annotated[int, Field(ge=1, le=5)]] = Field(default_factory=list)
    window_days: WindowDays | None = None

    @model_validator(mode="after")
    def _check(self) -> RfmCondition:
        if not (self.classes or self.r_scores or self.f_scores or self.m_scores):
            raise ValueError("name at least one of 'classes', 'r_scores', 'f_scores', 'm_scores'")
        return self


class AiplCondition(_Model):
    """At one of the AIPL stages (A 认知, I 兴趣, P 购买, L 忠诚) on the date."""

    kind: Literal["aipl"]
    stages: Annotated[list[AiplStage], Field(min_length=1)]


class LifecycleCondition(_Model):
    """At one of the new/old lifecycle stages; 'new' = joined within ``new_days`` days."""

    kind: Literal["lifecycle"]
    stages: Annotated[list[LifecycleStage], Field(min_length=1)]
    new_days: Annotated[int, Field(ge=1, le=3660)] = 30


ClvField = Literal["p_alive", "clv", "expected_purchases", "expected_spend", "clv_percentile"]
CLV_FIELDS: tuple[str, ...] = ("p_alive", "clv", "expected_purchases", "expected_spend", "clv_percentile")


class ClvCondition(_Model):
    """A predicted field of the brand's latest CLV fit (``clv_predictions``) compared with a number.

    ``clv_percentile`` is the customer's CLV rank among the brand's predicted customers, 0..1 (0.8 = top 20 %).
    Customers without a prediction never match.
    """

    kind: Literal["clv"]
    field: ClvField
    op: NumberOp = "gte"
    value: Number | list[Number]

    @model_validator(mode="after")
    def _check(self) -> ClvCondition:
        check_comparison(self.op, self.value, numeric=True)
        if self.field in ("p_alive", "clv_percentile"):
            items = self.value if isinstance(self.value, list) else [self.value]
            if any(not 0 <= v <= 1 for v in items):
                raise ValueError(f"[value] {self.field} is a share between 0 and 1 (e.g. 0.3)")
        return self


# ---- nesting -------------------------------------------------------------------------------------------------


class AndCondition(_Model):
    """Every condition holds."""

    kind: Literal["and"]
    conditions: Annotated[list[Condition], Field(min_length=1, max_length=50)]


class OrCondition(_Model):
    """At least one condition holds."""

    kind: Literal["or"]
    conditions: Annotated[list[Condition], Field(min_length=1, max_length=50)]


class NotCondition(_Model):
    """The condition does not hold (customers of the brand not matched by it)."""

    kind: Literal["not"]
    condition: Condition


Condition = Annotated[
    AndCondition
    | OrCondition
    | NotCondition
    | TraitCondition
    | EventCondition
    | OrderCondition
    | TagCondition
    | IdentityCondition
    | GuideCondition
    | StoreCondition
    | ChannelCondition
    | GroupCondition
    | RfmCondition
    | AiplCondition
    | LifecycleCondition
    | ClvCondition,
    Field(discriminator="kind"),
]
AndCondition.model_rebuild()
OrCondition.model_rebuild()
NotCondition.model_rebuild()

KINDS: tuple[str, ...] = (
    "and",
    "or",
    "not",
    "trait",
    "event",
    "orders",
    "tag",
    "identity",
    "guide",
    "store",
    "channel",
    "group",
    "rfm",
    "aipl",
    "lifecycle",
    "clv",
)
MAX_DEPTH = 8
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Condition)


# ---- errors ----------------------------------------------------------------------------------------------


class DefinitionError(SiyuError):
    """An invalid definition; ``errors`` lists each problem as {path, message}."""

    def __init__(self, errors: list[dict[str, str]], root: str = "definition") -> None:
        first = errors[0]
        text = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5])
        super().__init__(f"invalid segment definition — {text}", first["path"])
        self.errors = errors
        self.root = root


def _json_path(root: str, data: Any, loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic error location into a JSON path, dropping the discriminator tags pydantic inserts."""
    path = root
    node = data
    expect_tag = True  # pydantic names the union member (the 'kind') right after each condition position
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            expect_tag = path.endswith(f"conditions[{part}]")
            continue
        if expect_tag and isinstance(node, dict) and node.get("kind") == part:
            expect_tag = False
            continue
        expect_tag = part == "condition"
        path += f".{part}"
        node = node.get(part) if isinstance(node, dict) else None
    return path


def _fix(err: Any, data: Any) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    if kind == "missing":
        return f"required field missing; add '{err['loc'][-1]}'"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        got = err.get("ctx", {}).get("tag")
        return (f"unknown kind {got!r}; " if got else "") + f"'kind' must be one of {', '.join(KINDS)}"
    if kind == "extra_forbidden":
        return f"unknown field '{err['loc'][-1]}'; remove it (see docs/segments.md for each kind's fields)"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"got {err.get('input')!r}; use one of {expected}"
    if kind == "value_error":
        return msg.removeprefix("Value error, ").split("] ", 1)[-1]
    if kind == "too_short":
        return "must not be empty; add at least one item"
    if kind == "too_long":
        return f"too many items ({msg.lower()})"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{msg.lower()} (got {err.get('input')!r})"
    return f"{msg} (got {err.get('input')!r})"


def _depth(data: Any) -> int:
    if isinstance(data, dict):
        return 1 + max((_depth(v) for v in data.values()), default=0)
    if isinstance(data, list):
        return max((_depth(v) for v in data), default=0)
    return 0


def parse_definition(data: Any, root: str = "definition") -> Condition:
    """Validate raw JSON (a dict) into a ``Condition``; ``DefinitionError`` names each bad field's path and fix."""
    if not isinstance(data, dict):
        raise DefinitionError(
            [{"path": root, "message": 'a definition is a JSON object with a \'kind\', e.g. {"kind": "and", ...}'}],
            root,
        )
    if _depth(data) > MAX_DEPTH * 2:
        raise DefinitionError([{"path": root, "message": f"nesting is too deep; keep it within {MAX_DEPTH} levels"}])
    try:
        cond: Condition = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems: list[dict[str, str]] = []
        seen: set[str] = set()
        for err in exc.errors():
            path = _json_path(root, data, tuple(err["loc"]))
            hint = re.match(r"^Value error, \[([\w.]+)\] ", str(err["msg"]))
            if hint:
                path += "." + hint.group(1)
            if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                path += ".kind"
            message = _fix(err, data)
            if (path, message) in [(p["path"], p["message"]) for p in problems]:
                continue
            # a union member that failed as a whole is reported once per path
            if err["type"] == "union_tag_invalid" and path in seen:
                continue
            seen.add(path)
            problems.append({"path": path, "message": message})
        raise DefinitionError(problems, root) from None
    return cond


def dump_definition(cond: Condition) -> dict[str, Any]:
    """The JSON form of a condition: the fields that were given (defaults not spelled out), ``kind`` always."""
    out: dict[str, Any] = _ADAPTER.dump_python(cond, mode="json", exclude_unset=True)
    _keep_kind(cond, out)
    return out


def _keep_kind(cond: Any, out: dict[str, Any]) -> None:
    out["kind"] = cond.kind
    if isinstance(cond, AndCondition | OrCondition):
        for c, o in zip(cond.conditions, out["conditions"], strict=True):
            _keep_kind(c, o)
    elif isinstance(cond, NotCondition):
        _keep_kind(cond.condition, out["condition"])


def leaves(cond: Condition) -> list[Any]:
    """Every non-nesting condition of a tree, depth first."""
    if isinstance(cond, AndCondition | OrCondition):
        return [leaf for c in cond.conditions for leaf in leaves(c)]
    if isinstance(cond, NotCondition):
        return leaves(cond.condition)
    return [cond]
