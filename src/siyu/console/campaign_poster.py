"""The poster editor of the campaign builder: the campaign's (or a variant's) poster template as JSON with a live
preview drawn by the poster renderer (``siyu.services.posters``), the render time, errors naming the template
field, and "use this poster" (writes the template into the form's ``poster`` or the variant row's; saved with
the campaign, where ``parse_campaign`` checks it again)."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from nicegui import ui

from siyu.console.session import tr
from siyu.services.brands import User
from siyu.services.context import Context


def _renderer() -> Any:
    """F3's renderer modules, or None when they are not installed yet."""
    try:
        from siyu.domain import poster as domain
        from siyu.services import posters
    except ImportError:
        return None
    return domain, posters


class PosterEditor:
    def __init__(self, ctx: Context, user: User, form: dict[str, Any]) -> None:
        self.ctx, self.user, self.f = ctx, user, form
        self.mods = _renderer()
        self.variant = ""  # "" = the whole campaign's poster
        self.template_text = ""
        self.nickname = "小林"
        self.ready = False
        self.seen = ""

    def _variants(self) -> list[dict[str, Any]]:
        """The builder's variant rows (dicts; the poster is written into them)."""
        v = self.f.get("variants") or []
        return [x for x in v if isinstance(x, dict) and x.get("id")] if isinstance(v, list) else []

    def _template_of(self, variant: str) -> str:
        """The variant's template, else the campaign's, else the default (as the public poster chooses)."""
        assert self.mods is not None
        domain, _ = self.mods
        v = next((x for x in self._variants() if x.get("id") == variant), None) if variant else None
        tpl = (v or {}).get("poster") or self.f.get("poster") or domain.default_template().model_dump(mode="json")
        return json.dumps(tpl, ensure_ascii=False, indent=1)

    def render(self) -> None:
        if self.mods is None:
            ui.label(tr("cp.poster.coming")).classes("text-gray-500").props("data-testid=poster-coming")
            return
        variants = [str(v["id"]) for v in self._variants()]
        if not variants:
            ui.label(tr("cp.poster.no_variant")).classes("text-gray-500 text-sm").props("data-testid=poster-no-variant")
        self.variant = ""
        self.template_text = self._template_of(self.variant)
        choices = {"": tr("cp.poster.whole")} | {v: v for v in variants}
        with ui.row().classes("w-full items-start gap-4 no-wrap"):
            with ui.column().classes("grow gap-2"):
                with ui.row().classes("items-end gap-3"):
                    ui.select(choices, value=self.variant, label=tr("cp.poster.variant"), on_change=self._pick).classes(
                        "w-40"
                    ).props("dense data-testid=poster-variant")
                    ui.input(tr("cp.poster.nickname"), on_change=lambda _: self.preview()).bind_value(
                        self, "nickname"
                    ).props("dense data-testid=poster-nickname")
                    ui.button(tr("cp.poster.preview"), on_click=self.preview).props(
                        "outline dense data-testid=poster-preview-btn"
                    )
                    ui.button(tr("cp.poster.apply"), on_click=self.apply).props(
                        "dense color=teal-8 data-testid=poster-apply"
                    )
                self.editor = (
                    ui.textarea(tr("cp.poster.template"), on_change=lambda _: self.preview())
                    .bind_value(self, "template_text")
                    .classes("w-full font-mono text-xs")
                    .props("rows=18 data-testid=poster-template")
                )
                self.error = ui.label("").classes("text-negative text-sm").props("data-testid=poster-error")
                self.timing = ui.label("").classes("text-xs text-gray-500").props("data-testid=poster-ms")
            self.image = ui.image().classes("w-72 border").props("data-testid=poster-preview no-transition no-spinner")
        self.ready = True
        self.seen = self._form_key()
        self.preview()
        ui.timer(1.5, self._follow_form)

    def _form_key(self) -> str:
        keys = ("name", "title", "description", "kind")
        return json.dumps([self.f.get(k) for k in keys] + [self.f.get("tiers")], default=str, ensure_ascii=False)

    def _follow_form(self) -> None:
        """Redraw when the campaign's copy or tiers change in the builder (the preview shows them)."""
        key = self._form_key()
        if key != self.seen:
            self.seen = key
            self.preview()

    def _pick(self, e: Any) -> None:
        self.variant = str(e.value or "")
        self.template_text = self._template_of(self.variant)
        self.preview()

    def _data(self) -> Any:
        assert self.mods is not None
        domain, _ = self.mods
        benefits: list[str] = []
        if self.f.get("kind") == "assist":
            benefits = [f"邀请 {t['threshold']} 位好友助力" for t in self.f.get("tiers", [])][:6]
        ends = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=2, hours=3)
        return domain.PosterData(
            nickname=str(self.nickname or "")[:64],
            title=str(self.f.get("title") or self.f.get("name") or "")[:200],
            subtitle=str(self.f.get("description") or "")[:400],
            brand=self.user.brand_id[:100],
            benefits=benefits,
            stock_left=12,
            ends_at=ends,
            now=ends - timedelta(days=2, hours=3),
            qr_url="https://example.com/m/preview",
        )

    def preview(self) -> None:
        """Parse the template, draw it (uncached, to show the real render time) and show the PNG or the error."""
        if self.mods is None or not self.ready:
            return
        domain, posters = self.mods
        try:
            raw = json.loads(self.template_text or "{}")
            tpl = domain.parse_template(raw)
            started = time.perf_counter()
            png = posters.render(tpl, self._data())
            ms = (time.perf_counter() - started) * 1000
        except ValueError as exc:
            self.error.set_text(tr("cp.bad_json", error=str(exc)))
            return
        except Exception as exc:  # the renderer's PosterError (names the field) or a bad value
            field = getattr(exc, "field", None)
            message = getattr(exc, "message", str(exc))
            self.error.set_text(f"{field}: {message}" if field and field not in message else message)
            return
        self.error.set_text("")
        self.timing.set_text(tr("cp.poster.ms", ms=f"{ms:.1f}"))
        self.image.set_source("data:image/png;base64," + base64.b64encode(png).decode())

    def apply(self) -> None:
        """Write the template into the form's ``poster`` (whole campaign) or the chosen variant's ``poster`` (in the
        builder's variants JSON)."""
        assert self.mods is not None
        domain, _ = self.mods
        try:
            tpl = domain.parse_template(json.loads(self.template_text or "{}")).model_dump(mode="json")
        except Exception as exc:
            self.error.set_text(getattr(exc, "message", str(exc)))
            return
        if not self.variant:
            self.f["poster"] = tpl
        else:
            for v in self._variants():
                if v.get("id") == self.variant:
                    v["poster"] = tpl
        ui.notify(tr("cp.poster.applied", variant=self.variant or tr("cp.poster.whole")), type="positive")
