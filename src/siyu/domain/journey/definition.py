"""The journey (SOP / 客户旅程) definition: a trigger, re-entry rule, guards, goal and a graph of nodes and edges.

Pure pydantic (no I/O), versioned JSON (``schema_version``). A flow editor stores ``nodes`` (each with an ``id``
and a ``kind``) and ``edges`` (``from`` → ``to`` on a named ``branch``). ``siyu.domain.journey.validate`` parses
raw JSON and reports each problem with the node id and the field. Documented in ``docs/journeys.md``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from siyu.domain.segment_def import PropertyFilter

SCHEMA_VERSION = 1
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_NODE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
_FIELD = re.compile(r"^(birthday|created_at|traits\.[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)$")
MAX_NODES = 200
CHANNELS = ("wecom_1to1", "wecom_group", "wecom_mass", "sms", "webhook", "email")
ChannelName = Literal["wecom_1to1", "wecom_group", "wecom_mass", "sms", "webhook", "email"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _hhmm(value: str) -> str:
    if not _HHMM.match(value):
        raise ValueError(f"{value!r} is not a time of day; write HH:MM, e.g. 09:30")
    return value


HHMM = Annotated[str, Field(min_length=5, max_length=5)]


# ---- triggers ----------------------------------------------------------------------------------------------


class EventTrigger(_Model):
    """Enter when the customer does an event (track name, optional property filters)."""

    kind: Literal["event"]
    event: str = Field(min_length=1, max_length=200)
    where: list[PropertyFilter] = Field(default_factory=list, max_length=20)


class SegmentTrigger(_Model):
    """Enter when the customer enters (or exits) a saved segment."""

    kind: Literal["segment"]
    segment_id: str = Field(min_length=1, max_length=64)
    on: Literal["entry", "exit"] = "entry"
    include_current: bool = Field(default=False, description="on the first tick, also enter the current members")


class DateTrigger(_Model):
    """Enter ``offset_days`` after (negative: before) a date attribute; ``annual`` repeats it every year."""

    kind: Literal["date"]
    field: str = Field(min_length=1, max_length=200, description="birthday, created_at or traits.<key>")
    offset_days: int = Field(default=0, ge=-366, le=366)
    annual: bool = False

    @field_validator("field")
    @classmethod
    def _field(cls, v: str) -> str:
        if not _FIELD.match(v):
            raise ValueError(f"{v!r} is not a date attribute; use birthday, created_at or traits.<key>")
        return v


class CadenceTrigger(_Model):
    """Enter the audience (a segment id, or every customer) every ``every_days`` days from ``start``."""

    kind: Literal["cadence"]
    every_days: int = Field(ge=1, le=366)
    start: date
    segment_id: str | None = Field(default=None, max_length=64)


class ManualTrigger(_Model):
    """Customers are entered by an operator (API/CLI) or by another journey's start_journey action."""

    kind: Literal["manual"]


Trigger = Annotated[
    EventTrigger | SegmentTrigger | DateTrigger | CadenceTrigger | ManualTrigger, Field(discriminator="kind")
]


class Reentry(_Model):
    """once: a customer enters at most once; after_exit: again once the last entry ended; after_days: also
    ``days`` after the last entry started."""

    mode: Literal["once", "after_exit", "after_days"] = "once"
    days: int | None = Field(default=None, ge=1, le=3660)

    @model_validator(mode="after")
    def _days(self) -> Reentry:
        if self.mode == "after_days" and self.days is None:
            raise ValueError("[days] mode 'after_days' needs 'days' (1–3660)")
        if self.mode != "after_days" and self.days is not None:
            raise ValueError(f"[days] 'days' applies to mode 'after_days' only; remove it for {self.mode!r}")
        return self


# ---- guards ------------------------------------------------------------------------------------------------


class FrequencyCap(_Model):
    """At most ``max`` touches (sends and staff tasks) per customer in ``per_days`` days, across all journeys."""

    max: int = Field(ge=1, le=100)
    per_days: int = Field(ge=1, le=90)


class QuietHours(_Model):
    """No touches between ``start`` and ``end`` (local time; may span midnight): touches wait until ``end``."""

    start: HHMM
    end: HHMM

    @field_validator("start", "end")
    @classmethod
    def _t(cls, v: str) -> str:
        return _hhmm(v)


class Guards(_Model):
    """Frequency cap across journeys, quiet hours, suppression list, and per-channel daily caps
    (``{"wecom_mass": 1}``: WeCom allows one mass message per customer per day), counted per local day."""

    frequency_cap: FrequencyCap | None = None
    quiet_hours: QuietHours | None = None
    respect_suppression: bool = True
    channel_daily_caps: dict[
        Literal["wecom_1to1", "wecom_group", "wecom_mass", "sms", "webhook", "email"],
        Annotated[int, Field(ge=1, le=100)],
    ] = Field(default_factory=dict)


class Goal(_Model):
    """The event that counts as conversion; a customer who does it leaves the journey early (``exit_on_goal``)."""

    event: str = Field(min_length=1, max_length=200)
    where: list[PropertyFilter] = Field(default_factory=list, max_length=20)
    exit_on_goal: bool = True
    value_property: str = Field(default="revenue", max_length=200, description="the event property attributed")


# ---- nodes -------------------------------------------------------------------------------------------------


class _Node(_Model):
    id: str = Field(min_length=1, max_length=64)
    label: str = Field(default="", max_length=200)
    position: dict[str, float] | None = None  # the editor's x/y; ignored by the engine

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _NODE_ID.match(v):
            raise ValueError(f"{v!r}: a node id starts with a letter; letters, digits, _ and - (≤ 64)")
        return v


class WaitNode(_Node):
    """Wait a duration, until a time of day or of week (in the customer's active hours if known), or a date."""

    kind: Literal["wait"]
    mode: Literal["duration", "time_of_day", "until_date"] = "duration"
    minutes: int | None = Field(default=None, ge=1, le=366 * 24 * 60)
    at: HHMM | None = None
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        default_factory=list, max_length=7, description="time_of_day on these ISO weekdays only (1 = Monday)"
    )
    use_active_hours: bool = True
    until: datetime | None = None

    @model_validator(mode="after")
    def _mode(self) -> WaitNode:
        if self.weekdays and self.mode != "time_of_day":
            raise ValueError("[weekdays] 'weekdays' applies to mode 'time_of_day' only")
        if self.mode == "duration" and self.minutes is None:
            raise ValueError("[minutes] mode 'duration' needs 'minutes', e.g. 1440 for one day")
        if self.mode == "time_of_day":
            if self.at is None:
                raise ValueError("[at] mode 'time_of_day' needs 'at' (HH:MM)")
            _hhmm(self.at)
        if self.mode == "until_date" and self.until is None:
            raise ValueError("[until] mode 'until_date' needs 'until' (YYYY-MM-DDTHH:MM)")
        return self

    def branches(self) -> list[str]:
        return ["next"]


class WaitEventNode(_Node):
    """Wait for an event; branch ``event`` when it comes, ``timeout`` after ``timeout_minutes``."""

    kind: Literal["wait_event"]
    event: str = Field(min_length=1, max_length=200)
    where: list[PropertyFilter] = Field(default_factory=list, max_length=20)
    timeout_minutes: int = Field(ge=1, le=366 * 24 * 60)

    def branches(self) -> list[str]:
        return ["event", "timeout"]


class WaitSegmentNode(_Node):
    """Wait until the customer matches a segment condition (checked every ``check_minutes``); branch ``matched``,
    or ``timeout`` after ``timeout_minutes``."""

    kind: Literal["wait_segment"]
    condition: dict[str, Any] = Field(description="any segment condition (docs/segments.md)")
    check_minutes: int = Field(default=60, ge=5, le=7 * 24 * 60)
    timeout_minutes: int = Field(ge=1, le=366 * 24 * 60)

    def branches(self) -> list[str]:
        return ["matched", "timeout"]


class Branch(_Model):
    name: str = Field(min_length=1, max_length=64)
    condition: dict[str, Any] = Field(description="any segment condition (docs/segments.md)")


class ConditionNode(_Node):
    """Multi-way branch: the first branch whose segment condition the customer matches, else ``else``."""

    kind: Literal["condition"]
    branches_: list[Branch] = Field(alias="branches", min_length=1, max_length=20)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def branches(self) -> list[str]:
        return [b.name for b in self.branches_] + ["else"]


class Arm(_Model):
    name: str = Field(min_length=1, max_length=64)
    weight: float = Field(gt=0, le=1000)


class SplitNode(_Node):
    """Random split by weight (deterministic per entry: the same entry always gets the same arm)."""

    kind: Literal["split"]
    arms: list[Arm] = Field(min_length=2, max_length=10)

    def branches(self) -> list[str]:
        return [a.name for a in self.arms]


class ExperimentNode(_Node):
    """A/B/n experiment: arms by weight after ``holdout_percent`` % go to branch ``holdout`` (no treatment).

    Conversion = the journey's goal event; ``alpha`` is the always-valid test's error rate (docs/journeys.md).
    """

    kind: Literal["experiment"]
    arms: list[Arm] = Field(min_length=1, max_length=10)
    holdout_percent: float = Field(default=0, ge=0, lt=100)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)

    def branches(self) -> list[str]:
        return [a.name for a in self.arms] + (["holdout"] if self.holdout_percent > 0 else [])


class SendAction(_Model):
    """Send through a channel by a pluggable sender; placeholders in ``content`` ({name}, {city}, …) are the
    sender's to fill (the connector knows the customer and the guide)."""

    type: Literal["send"]
    channel: Literal["wecom_1to1", "wecom_group", "wecom_mass", "sms", "webhook", "email"]
    template: str = Field(default="", max_length=200)
    content: str = Field(default="", max_length=4000)

    @model_validator(mode="after")
    def _something(self) -> SendAction:
        if not self.template and not self.content:
            raise ValueError("[content] a send needs 'content' or 'template'")
        return self


class TaskAction(_Model):
    """A staff task for the customer's guide (导购): call / message / visit, due after ``due_hours``."""

    type: Literal["task"]
    task_kind: Literal["call", "message", "visit"] = "message"
    title: str = Field(min_length=1, max_length=200)
    script: str = Field(default="", max_length=4000)
    due_hours: float = Field(default=24, gt=0, le=24 * 90)


class TagAction(_Model):
    type: Literal["tag"]
    op: Literal["add", "remove"] = "add"
    tag: str = Field(min_length=1, max_length=200)


class AttributeAction(_Model):
    """Set ``traits.<key>`` on the customer."""

    type: Literal["attribute"]
    field: str = Field(min_length=1, max_length=200)
    value: str | int | float | bool | None

    @field_validator("field")
    @classmethod
    def _f(cls, v: str) -> str:
        if not re.match(r"^traits\.[A-Za-z_][A-Za-z0-9_]*$", v):
            raise ValueError(f"{v!r}: an attribute is traits.<key> (letters, digits, _)")
        return v


class StartJourneyAction(_Model):
    type: Literal["start_journey"]
    journey_id: str = Field(min_length=1, max_length=64)


class CouponAction(_Model):
    """Issue a coupon (placeholder: recorded as an effect for the coupon connector to deliver)."""

    type: Literal["coupon"]
    coupon: str = Field(min_length=1, max_length=200)
    amount: float | None = Field(default=None, ge=0)


Action = Annotated[
    SendAction | TaskAction | TagAction | AttributeAction | StartJourneyAction | CouponAction,
    Field(discriminator="type"),
]
TOUCH_ACTIONS = ("send", "task", "coupon")  # count against the frequency cap, held by quiet hours


class ActionNode(_Node):
    kind: Literal["action"]
    action: Action

    def branches(self) -> list[str]:
        return ["next"]


class ExitNode(_Node):
    kind: Literal["exit"]

    def branches(self) -> list[str]:
        return []


Node = Annotated[
    WaitNode | WaitEventNode | WaitSegmentNode | ConditionNode | SplitNode | ExperimentNode | ActionNode | ExitNode,
    Field(discriminator="kind"),
]
NODE_KINDS = ("wait", "wait_event", "wait_segment", "condition", "split", "experiment", "action", "exit")


class Edge(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    from_: str = Field(alias="from", min_length=1, max_length=64)
    to: str = Field(min_length=1, max_length=64)
    branch: str = Field(default="next", min_length=1, max_length=64)


class JourneyDefinition(_Model):
    """A whole journey: validated as a graph by ``parse_journey``."""

    schema_version: Literal[1] = 1
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    trigger: Trigger
    reentry: Reentry = Field(default_factory=Reentry)
    guards: Guards = Field(default_factory=Guards)
    goal: Goal | None = None
    start: str = Field(min_length=1, max_length=64)
    nodes: list[Node] = Field(min_length=1, max_length=MAX_NODES)
    edges: list[Edge] = Field(default_factory=list, max_length=MAX_NODES * 10)

    def node(self, node_id: str) -> Any:
        return self.node_map()[node_id]

    def node_map(self) -> dict[str, Any]:
        return {n.id: n for n in self.nodes}

    def next_of(self) -> dict[tuple[str, str], str]:
        """(node id, branch) → next node id."""
        return {(e.from_, e.branch): e.to for e in self.edges}
