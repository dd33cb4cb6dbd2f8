"""Console pages /campaigns/new and /campaigns/{id}/edit: the campaign builder — type, rules (assist tiers with a
reward or a pool, group-buy, gift), rewards from the catalogue with their stock, carrier, anti-abuse, budget,
regions, pilot, A/B variants and guide targets (JSON), and the poster editor with a live preview
(``campaign_poster``). Saved through the campaign service (``siyu.services.campaigns``: a new version each
save); every validation problem is shown on its field."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from nicegui import ui

from siyu.console.campaign_poster import PosterEditor
from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.domain.campaign import CampaignError
from siyu.domain.models import Role
from siyu.errors import SiyuError
from siyu.services import campaigns as service
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.rewards import list_rewards

NUMBER_FIELDS = {
    "assist.max_threshold": 15,
    "group_buy.team_size": 3,
    "group_buy.team_hours": 24,
    "gift.max_gifts_per_giver": 1,
    "gift.claim_hours": 72,
    "anti_abuse.device_per_day": 3,
    "anti_abuse.ip_per_hour": 30,
    "anti_abuse.person_per_day": 10,
    "anti_abuse.min_keep_days": 0,
    "max_depth": 20,
}


TARGET_KEYS: dict[str, Any] = {"guide_id": "", "participants": 0, "new_customers": 0, "conversions": 0, "gmv": 0}
VARIANT_FORM = ("id", "weight", "title", "copy_text")


def tid(path: str) -> str:
    """A field path as a test id (CSS-safe: dots become dashes)."""
    return path.replace(".", "-")


def _local_now(tz: str = "Asia/Shanghai") -> datetime:
    return datetime.now(ZoneInfo(tz)).replace(tzinfo=None, second=0, microsecond=0)


def form_of(definition: dict[str, Any] | None) -> dict[str, Any]:
    """The builder's flat form state from a definition (or the defaults of a new assist campaign)."""
    d = definition or {}
    now = _local_now()
    f: dict[str, Any] = {
        "name": d.get("name", ""),
        "title": d.get("title", ""),
        "description": d.get("description", ""),
        "kind": d.get("kind", "assist"),
        "starts_at": str(d.get("starts_at") or now.isoformat(timespec="minutes"))[:16],
        "ends_at": str(d.get("ends_at") or (now + timedelta(days=14)).isoformat(timespec="minutes"))[:16],
        "timezone": d.get("timezone", "Asia/Shanghai"),
        "tiers": [
            {"threshold": t.get("threshold", 3), "reward_id": t.get("reward_id"), "pool": list(t.get("pool", []))}
            for t in (d.get("assist") or {}).get("tiers", [{"threshold": 3}])
        ],
        "assist.cyclic": (d.get("assist") or {}).get("cyclic", True),
        "assist.helper_reward_id": (d.get("assist") or {}).get("helper_reward_id"),
        "group_buy.initiator_reward_id": (d.get("group_buy") or {}).get("initiator_reward_id"),
        "group_buy.joiner_reward_id": (d.get("group_buy") or {}).get("joiner_reward_id"),
        "gift.reward_id": (d.get("gift") or {}).get("reward_id"),
        "gift.giver_bonus_reward_id": (d.get("gift") or {}).get("giver_bonus_reward_id"),
        "gift.bonus_on": (d.get("gift") or {}).get("bonus_on", "redeem"),
        "carrier.kind": (d.get("carrier") or {}).get("kind", "h5"),
        "carrier.channel_code_id": (d.get("carrier") or {}).get("channel_code_id"),
        "carrier.chat_id": (d.get("carrier") or {}).get("chat_id", ""),
        "carrier.appid": (d.get("carrier") or {}).get("appid", ""),
        "anti_abuse.clawback": (d.get("anti_abuse") or {}).get("clawback", "unused"),
        "budget": d.get("budget"),
        "regions": "，".join(d.get("regions", [])),
        "pilot.percent": (d.get("pilot") or {}).get("percent"),
        "pilot.segment_id": (d.get("pilot") or {}).get("segment_id") or "",
        "variants": [dict(v) for v in d.get("variants", [])],  # rows of the A/B form (other keys kept as they are)
        "guide_targets": [{k: t.get(k, TARGET_KEYS.get(k)) for k in TARGET_KEYS} for t in d.get("guide_targets", [])],
        "poster": d.get("poster"),  # the campaign's poster template (the poster editor's "campaign" choice)
    }
    for path, default in NUMBER_FIELDS.items():
        section, _, key = path.rpartition(".")
        src = (d.get(section) or {}) if section else d
        f[path] = src.get(key, default)
    return f


def _int(v: Any) -> Any:
    """A whole number when the input is one (ui.number gives floats); anything else unchanged for validation."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def definition_of(f: dict[str, Any]) -> dict[str, Any]:
    """The campaign definition JSON of the form (only the chosen kind's rules). Raises CampaignError for JSON
    fields that do not parse."""
    kind = f["kind"]
    d: dict[str, Any] = {
        "kind": kind,
        "name": f["name"],
        "title": f["title"],
        "description": f["description"],
        "starts_at": f["starts_at"],
        "ends_at": f["ends_at"],
        "timezone": f["timezone"],
        "max_depth": _int(f["max_depth"]),
    }
    if kind == "assist":
        tiers = []
        for t in f["tiers"]:
            tier: dict[str, Any] = {"threshold": _int(t["threshold"])}
            if t.get("pool"):
                tier["pool"] = list(t["pool"])
            else:
                tier["reward_id"] = t.get("reward_id")
            tiers.append(tier)
        d["assist"] = {
            "tiers": tiers,
            "max_threshold": _int(f["assist.max_threshold"]),
            "cyclic": bool(f["assist.cyclic"]),
        }
        if f["assist.helper_reward_id"]:
            d["assist"]["helper_reward_id"] = f["assist.helper_reward_id"]
    elif kind == "group_buy":
        d["group_buy"] = {
            "team_size": _int(f["group_buy.team_size"]),
            "team_hours": _int(f["group_buy.team_hours"]),
            "initiator_reward_id": f["group_buy.initiator_reward_id"],
            "joiner_reward_id": f["group_buy.joiner_reward_id"],
        }
    else:
        d["gift"] = {
            "reward_id": f["gift.reward_id"],
            "max_gifts_per_giver": _int(f["gift.max_gifts_per_giver"]),
            "claim_hours": _int(f["gift.claim_hours"]),
            "bonus_on": f["gift.bonus_on"],
        }
        if f["gift.giver_bonus_reward_id"]:
            d["gift"]["giver_bonus_reward_id"] = f["gift.giver_bonus_reward_id"]
    carrier: dict[str, Any] = {"kind": f["carrier.kind"]}
    if f["carrier.kind"] == "wecom_guide":
        carrier["channel_code_id"] = _int(f["carrier.channel_code_id"])
    elif f["carrier.kind"] == "wecom_group":
        carrier["chat_id"] = f["carrier.chat_id"] or ""
    elif f["carrier.kind"] == "official_account":
        carrier["appid"] = f["carrier.appid"] or ""
    d["carrier"] = carrier
    d["anti_abuse"] = {
        k: _int(f[f"anti_abuse.{k}"]) for k in ("device_per_day", "ip_per_hour", "person_per_day", "min_keep_days")
    } | {"clawback": f["anti_abuse.clawback"]}
    if f["budget"] not in (None, ""):
        d["budget"] = f["budget"]
    regions = [r.strip() for r in str(f["regions"] or "").replace("，", ",").split(",") if r.strip()]
    if regions:
        d["regions"] = regions
    if f["pilot.percent"] not in (None, "") or f["pilot.segment_id"]:
        d["pilot"] = {"percent": f["pilot.percent"] or None, "segment_id": f["pilot.segment_id"] or None}
    if f.get("poster"):
        d["poster"] = f["poster"]
    d["variants"] = [
        {k: (_int(v) if k == "weight" else v) for k, v in row.items() if v is not None} for row in f["variants"]
    ]
    d["guide_targets"] = [
        {k: (v if k == "guide_id" else 0 if v in (None, "") else _int(v)) for k, v in row.items()}
        for row in f["guide_targets"]
    ]
    return d


class Builder:
    def __init__(self, ctx: Context, user: User, campaign: dict[str, Any] | None) -> None:
        self.ctx, self.user, self.campaign = ctx, user, campaign
        self.f = form_of(campaign["definition"] if campaign else None)
        self.rewards = list_rewards(ctx, user.brand_id, status="active", limit=500)
        self.reward_options = {r["id"]: f"{r['name']} ({r['id']})" for r in self.rewards}
        self.errors: dict[str, tuple[Any, Any]] = {}  # field path → (widget, error label)
        self.poster: PosterEditor | None = None

    # -- fields --------------------------------------------------------------------------------------------------
    def _err(self, path: str, widget: Any) -> None:
        label = ui.label("").classes("text-negative text-xs").props(f"data-testid=err-{tid(path)}")
        label.set_visibility(False)
        self.errors[path] = (widget, label)

    def text(self, path: str, **kw: Any) -> Any:
        with ui.column().classes("gap-0"):
            w = ui.input(tr(f"cp.f.{path}"), **kw).bind_value(self.f, path).props(f"dense data-testid=f-{tid(path)}")
            self._err(path, w)
        return w

    def number(self, path: str, minimum: float | None = 0) -> Any:
        with ui.column().classes("gap-0"):
            w = (
                ui.number(tr(f"cp.f.{path}"), min=minimum)
                .bind_value(self.f, path)
                .props(f"dense data-testid=f-{tid(path)}")
            )
            self._err(path, w)
        return w

    def reward(
        self, path: str, target: dict[str, Any] | None = None, key: str | None = None, optional: bool = True
    ) -> Any:
        opts = ({"": tr("cp.no_reward")} if optional else {}) | self.reward_options
        holder, k = (target, key) if target is not None and key is not None else (self.f, path)
        if holder.get(k) is None:
            holder[k] = "" if optional else None
        with ui.column().classes("gap-0"):
            label = tr("cp.f.reward_id") if target is not None else tr(f"cp.f.{path}")
            w = (
                ui.select(opts, label=label)
                .bind_value(holder, k)
                .classes("min-w-56")
                .props(f"dense data-testid=f-{tid(path)}")
            )
            self._err(path, w)
        return w

    def select(self, path: str, options: dict[str, str], on_change: Any = None) -> Any:
        with ui.column().classes("gap-0"):
            w = (
                ui.select(options, label=tr(f"cp.f.{path}"), on_change=on_change)
                .bind_value(self.f, path)
                .classes("min-w-56")
                .props(f"dense data-testid=f-{tid(path)}")
            )
            self._err(path, w)
        return w

    # -- sections ------------------------------------------------------------------------------------------------
    def render(self) -> None:
        editing = self.campaign is not None
        with ui.card().classes("w-full").props("flat bordered"):
            ui.label(tr("cp.sec.basic")).classes("text-base font-bold")
            with ui.row().classes("items-start gap-4 w-full"):
                self.text("name").classes("w-72")
                self.text("title").classes("w-72")
                kinds = {k: tr(f"cp.kind.{k}") for k in ("assist", "group_buy", "gift")}
                kind = self.select("kind", kinds, on_change=lambda _: self.rules.refresh())
                if editing and self.campaign and self.campaign["status"] != "draft":
                    kind.disable()
            with ui.row().classes("items-start gap-4 w-full"):
                self.text("starts_at").props("type=datetime-local stack-label")
                self.text("ends_at").props("type=datetime-local stack-label")
                self.text("timezone")
            self.text("description").classes("w-full")
        with ui.card().classes("w-full").props("flat bordered data-testid=sec-rules"):
            ui.label(tr("cp.sec.rules")).classes("text-base font-bold")
            self.rules()
        self.catalogue()
        with ui.card().classes("w-full").props("flat bordered"):
            ui.label(tr("cp.sec.carrier")).classes("text-base font-bold")
            with ui.row().classes("items-start gap-4"):
                self.select(
                    "carrier.kind",
                    {k: tr(f"cp.carrier.{k}") for k in ("h5", "wecom_guide", "wecom_group", "official_account")},
                )
                self.number("carrier.channel_code_id", 1)
                self.text("carrier.chat_id")
                self.text("carrier.appid")
        with ui.card().classes("w-full").props("flat bordered"):
            ui.label(tr("cp.sec.abuse")).classes("text-base font-bold")
            with ui.row().classes("items-start gap-4"):
                for k in ("device_per_day", "ip_per_hour", "person_per_day", "min_keep_days"):
                    self.number(f"anti_abuse.{k}")
                self.select("anti_abuse.clawback", {k: tr(f"cp.clawback.{k}") for k in ("none", "unused", "always")})
        with ui.card().classes("w-full").props("flat bordered"):
            ui.label(tr("cp.sec.budget")).classes("text-base font-bold")
            with ui.row().classes("items-start gap-4"):
                self.number("budget")
                self.text("regions").classes("w-72")
                self.number("pilot.percent")
                self.text("pilot.segment_id")
                self.number("max_depth")
        with ui.card().classes("w-full").props("flat bordered data-testid=sec-advanced"):
            ui.label(tr("cp.sec.advanced")).classes("text-base font-bold")
            self.advanced()
        with ui.card().classes("w-full").props("flat bordered data-testid=sec-poster"):
            ui.label(tr("cp.sec.poster")).classes("text-base font-bold")
            self.poster = PosterEditor(self.ctx, self.user, self.f)
            self.poster.render()
        with ui.row().classes("items-center gap-3"):
            ui.button(tr("cp.validate"), on_click=self.validate).props("outline data-testid=builder-validate")
            ui.button(tr("cp.save"), on_click=self.save).props("color=teal-8 data-testid=builder-save")
            self.summary = ui.label("").classes("text-sm").props("data-testid=builder-summary")

    @ui.refreshable_method
    def rules(self) -> None:
        for path in [p for p in self.errors if p.startswith(("assist.", "group_buy.", "gift."))]:
            self.errors.pop(path)
        kind = self.f["kind"]
        if kind == "assist":
            for i, tier in enumerate(self.f["tiers"]):
                with ui.row().classes("items-start gap-3").props(f"data-testid=tier-{i}"):
                    ui.label(tr("cp.tier", n=i + 1)).classes("pt-4 w-16")
                    with ui.column().classes("gap-0"):
                        w = (
                            ui.number(tr("cp.f.threshold"), min=1)
                            .bind_value(tier, "threshold")
                            .props(f"dense data-testid=f-assist-tiers-{i}-threshold")
                        )
                        self._err(f"assist.tiers.{i}.threshold", w)
                    self.reward(f"assist.tiers.{i}.reward_id", tier, "reward_id")
                    with ui.column().classes("gap-0"):
                        pool = (
                            ui.select(self.reward_options, label=tr("cp.f.pool"), multiple=True)
                            .bind_value(tier, "pool")
                            .classes("min-w-56")
                            .props(f"dense use-chips data-testid=f-assist-tiers-{i}-pool")
                        )
                        self._err(f"assist.tiers.{i}.pool", pool)
                    if len(self.f["tiers"]) > 1:
                        ui.button(tr("cp.remove_tier"), on_click=lambda _, k=i: self._drop_tier(k)).props(
                            f"flat dense size=sm data-testid=tier-{i}-remove"
                        )
            self._err("assist.tiers", ui.label(""))
            with ui.row().classes("items-start gap-4"):
                ui.button(tr("cp.add_tier"), icon="add", on_click=self._add_tier).props(
                    "flat dense data-testid=tier-add"
                )
                self.number("assist.max_threshold", 1)
                self.reward("assist.helper_reward_id")
                ui.checkbox(tr("cp.f.assist.cyclic")).bind_value(self.f, "assist.cyclic").props(
                    "data-testid=f-assist-cyclic"
                )
        elif kind == "group_buy":
            with ui.row().classes("items-start gap-4"):
                self.number("group_buy.team_size", 2)
                self.number("group_buy.team_hours", 1)
                self.reward("group_buy.initiator_reward_id", optional=False)
                self.reward("group_buy.joiner_reward_id", optional=False)
        else:
            with ui.row().classes("items-start gap-4"):
                self.reward("gift.reward_id", optional=False)
                self.number("gift.max_gifts_per_giver", 1)
                self.number("gift.claim_hours", 1)
                self.reward("gift.giver_bonus_reward_id")
                self.select("gift.bonus_on", {k: tr(f"cp.bonus.{k}") for k in ("claim", "redeem")})

    def _cell(self, row: dict[str, Any], key: str, path: str, label: str, number: bool = False) -> Any:
        with ui.column().classes("gap-0"):
            w = ui.number(label, min=0) if number else ui.input(label)
            w.bind_value(row, key).props(f"dense data-testid=f-{tid(path)}")
            self._err(path, w)
        return w

    @ui.refreshable_method
    def advanced(self) -> None:
        """A/B variants and guide targets as small forms (add / remove rows)."""
        for path in [p for p in self.errors if p.startswith(("variants", "guide_targets"))]:
            self.errors.pop(path)
        ui.label(tr("cp.f.variants")).classes("text-sm font-bold")
        for i, v in enumerate(self.f["variants"]):
            v.setdefault("id", "")
            v.setdefault("weight", 1)
            with ui.row().classes("items-start gap-3").props(f"data-testid=variant-{i}"):
                for key in VARIANT_FORM:
                    cell = self._cell(v, key, f"variants.{i}.{key}", tr(f"cp.f.variant.{key}"), key == "weight")
                    if key == "copy_text":
                        cell.classes("w-80")
                more = sorted(k for k in v if k not in VARIANT_FORM and v[k] not in (None, "", [], {}))
                if more:
                    ui.label(tr("cp.variant.more", keys=", ".join(more))).classes("text-xs text-gray-500 pt-5")
                ui.button(tr("cp.remove_tier"), on_click=lambda _, k=i: self._drop("variants", k)).props(
                    f"flat dense size=sm data-testid=variant-{i}-remove"
                )
        self._err("variants", ui.label(""))
        ui.button(tr("cp.add_variant"), icon="add", on_click=self._add_variant).props(
            "flat dense data-testid=variant-add"
        )
        ui.label(tr("cp.f.guide_targets")).classes("text-sm font-bold pt-2")
        for i, t in enumerate(self.f["guide_targets"]):
            with ui.row().classes("items-start gap-3").props(f"data-testid=target-{i}"):
                for key in TARGET_KEYS:
                    self._cell(t, key, f"guide_targets.{i}.{key}", tr(f"cp.f.target.{key}"), key != "guide_id")
                ui.button(tr("cp.remove_tier"), on_click=lambda _, k=i: self._drop("guide_targets", k)).props(
                    f"flat dense size=sm data-testid=target-{i}-remove"
                )
        self._err("guide_targets", ui.label(""))
        ui.button(tr("cp.add_target"), icon="add", on_click=self._add_target).props("flat dense data-testid=target-add")

    def _add_variant(self) -> None:
        taken = {str(v.get("id")) for v in self.f["variants"]}
        name = next(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "0123456789" if c not in taken)
        self.f["variants"].append({"id": name, "weight": 1, "title": "", "copy_text": ""})
        self.advanced.refresh()

    def _add_target(self) -> None:
        self.f["guide_targets"].append(dict(TARGET_KEYS))
        self.advanced.refresh()

    def _drop(self, key: str, i: int) -> None:
        self.f[key].pop(i)
        self.advanced.refresh()

    def _add_tier(self) -> None:
        last = self.f["tiers"][-1]["threshold"] if self.f["tiers"] else 0
        self.f["tiers"].append({"threshold": int(last or 0) + 2, "reward_id": "", "pool": []})
        self.rules.refresh()

    def _drop_tier(self, i: int) -> None:
        self.f["tiers"].pop(i)
        self.rules.refresh()

    def catalogue(self) -> None:
        with ui.card().classes("w-full").props("flat bordered data-testid=sec-rewards"):
            ui.label(tr("cp.sec.rewards")).classes("text-base font-bold")
            if not self.rewards:
                ui.label(tr("cp.rw.none")).classes("text-gray-500")
            with ui.grid(columns=4).classes("gap-x-6 gap-y-1"):
                for h in ("name", "kind", "stock", "cost"):
                    ui.label(tr(f"cp.rw.{h}")).classes("text-xs text-gray-500 font-bold")
                for r in self.rewards:
                    ui.label(f"{r['name']} ({r['id']})")
                    ui.label(r["kind"])
                    left = r["stock_left"]
                    ui.label(tr("cp.unlimited") if left is None else str(left)).props(f"data-testid=stock-{r['id']}")
                    ui.label(f"{float(r['unit_cost'] or 0):.2f}")
            self._err("rewards", ui.label(""))

    # -- validate / save -----------------------------------------------------------------------------------------
    def _clear(self) -> None:
        for widget, label in self.errors.values():
            label.set_text("")
            label.set_visibility(False)
            widget.props(remove="error error-message")

    def _show(self, errors: list[dict[str, str]]) -> None:
        unplaced = []
        for e in errors:
            path = e["field"]
            while path and path not in self.errors:  # variants[1].poster.elements[2].size → … → variants
                parent = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", path)
                path = "" if parent == path else parent
            if not path:
                unplaced.append(f"{e['field']}: {e['message']}")
                continue
            widget, label = self.errors[path]
            text = f"{e['field']}: {e['message']}" if path != e["field"] else e["message"]
            label.set_text((label.text + "；" if label.text else "") + text)
            label.set_visibility(True)
            widget.props("error")
        msg = tr("cp.invalid", n=len(errors))
        self.summary.set_text(msg + ("：" + "；".join(unplaced) if unplaced else ""))
        self.summary.classes(replace="text-sm text-negative")

    def _definition(self) -> dict[str, Any] | None:
        self._clear()
        try:
            data = definition_of(self.f)
            service.validate(self.ctx, self.user.brand_id, data)
        except CampaignError as exc:
            self._show(exc.errors)
            return None
        except SiyuError as exc:
            self._show([{"field": exc.field or "definition", "message": exc.message}])
            return None
        return data

    def validate(self) -> None:
        if self._definition() is not None:
            self.summary.set_text(tr("cp.valid"))
            self.summary.classes(replace="text-sm text-teal-800")

    def save(self) -> None:
        data = self._definition()
        if data is None:
            return
        try:
            if self.campaign is None:
                saved = service.create(self.ctx, self.user.brand_id, data, self.user.username)
            else:
                saved = service.update(self.ctx, self.user.brand_id, self.campaign["id"], data, self.user.username)
        except CampaignError as exc:
            self._show(exc.errors)
            return
        except SiyuError as exc:
            self._show([{"field": exc.field or "definition", "message": exc.message}])
            return
        ui.notify(tr("cp.saved", version=saved["version"]), type="positive")
        ui.navigate.to(f"/campaigns/{saved['id']}")


def _page(campaign_id: str | None) -> Any:
    user = current_user()
    if user is None:
        return login_redirect()
    title = "cp.builder.edit" if campaign_id else "cp.builder.new"
    with frame(user, title, "nav.fission"):
        ui.label(tr(title)).classes("text-2xl").props("data-testid=builder-title")
        if user.role == Role.GUIDE:
            ui.label(tr("cp.guide_note")).classes("text-gray-600")
            return None
        ctx = context()
        campaign = None
        if campaign_id:
            try:
                campaign = service.get(ctx, user.brand_id, campaign_id)
            except SiyuError as exc:
                ui.label(exc.message).classes("text-negative").props("data-testid=builder-error")
                return None
        Builder(ctx, user, campaign).render()
    return None


def register() -> None:
    """Add the pages to NiceGUI."""

    @ui.page("/campaigns/new")
    def new_campaign() -> Any:
        return _page(None)

    @ui.page("/campaigns/{campaign_id}/edit")
    def edit_campaign(campaign_id: str) -> Any:
        return _page(campaign_id)
