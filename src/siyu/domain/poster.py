"""Campaign posters (海报): a typed template (canvas, background, positioned elements) and CJK line layout.

Pure (no I/O). ``parse_template(raw)`` checks a template and names the field of every problem
(``elements[2].width``); ``fill(text, data)`` fills its ``{placeholders}``; ``break_lines`` lays Chinese text
out line by line — a break may fall between any two Chinese characters, but not before a closing mark
(，。！？；：、）》」』…) nor after an opening one (（《「『); Latin words and numbers stay whole (unless
one alone is wider than the line), and text beyond ``max_lines`` ends with an ellipsis. Widths come from a
``measure`` function (the renderer passes the real font's), so the layout never guesses.
``siyu.services.posters`` draws it with Pillow.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections import deque
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from siyu.errors import SiyuError

# A line must not START with these (closing punctuation, 避头) nor END with OPENERS (opening marks, 避尾).
NO_START = frozenset("，。、！？；：）》」』】〕〉〗”’…‥—～·%‰℃,.!?;:)]}>")
NO_END = frozenset("（《「『【〔〈〖“‘([{<¥￥$#")
ELLIPSIS = "…"
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[.\-'’/_@:][A-Za-z0-9]+)*|[ \t]+|.", re.S)
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ASSET = re.compile(r"^[0-9a-f]{64}$")
PLACEHOLDERS = (
    "nickname",
    "title",
    "subtitle",
    "brand",
    "stock_left",
    "days",
    "hh",
    "mm",
    "price",
    "original_price",
)
MAX_ELEMENTS = 60


class PosterError(SiyuError):
    """An invalid template (or data that cannot be drawn in it); ``field`` is the path, e.g. ``elements[2].width``."""


# ---- line layout ----------------------------------------------------------------------------------------------


def tokens(text: str) -> list[str]:
    """Unbreakable units: a Latin word / number (``iPhone15``, ``12.5``, ``a-b``), a run of spaces, or one character."""
    return _TOKEN.findall(text)


def break_lines(
    text: str, width: float, measure: Callable[[str], float], max_lines: int = 0, field: str = "text"
) -> list[str]:
    """Lines of ``text`` no wider than ``width`` by ``measure``, obeying the 禁则 rules; ``max_lines`` > 0 cuts the
    text there and ends the last line with an ellipsis. A newline in the text starts a new line. Raises
    ``PosterError(field)`` when not even one character fits."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines += _paragraph(paragraph, width, measure, field)
        if max_lines and len(lines) > max_lines:
            break
    if max_lines and len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], ellipsize(lines[max_lines - 1], width, measure)]
    return lines


def _fits(s: str, width: float, measure: Callable[[str], float]) -> bool:
    return measure(s) <= width


def _paragraph(text: str, width: float, measure: Callable[[str], float], field: str) -> list[str]:
    queue = deque(tokens(text))
    lines: list[str] = []
    cur: list[str] = []
    while queue:
        tok = queue.popleft()
        if tok.isspace() and not cur:
            continue  # no leading spaces on a line
        if _fits("".join(cur) + tok, width, measure):
            cur.append(tok)
            continue
        if not cur:  # a single token wider than the line: split it by character (the only time a word is split)
            if len(tok) == 1:
                raise PosterError(f"the box is too narrow for even one character ({tok!r}); widen it", field)
            queue.extendleft(reversed(list(tok)))
            continue
        if tok.isspace():  # break at the space, drop it — unless a closing mark comes next
            while queue and queue[0].isspace():
                queue.popleft()
            if not queue or queue[0][0] not in NO_START:
                lines.append("".join(cur).rstrip())
                cur = []
                continue
            tok = queue.popleft()
        carry = [tok]
        _trim_spaces(cur)
        # 追い出し: move characters down until the next line does not start with a closing mark and this one does
        # not end with an opening mark (at least one character stays on the line).
        while cur and (carry[0][0] in NO_START or cur[-1][-1] in NO_END):
            if len(cur) > 1:
                carry.insert(0, cur.pop())
                _trim_spaces(cur)
            elif len(cur[0]) > 1:  # one word fills the line: its last letter goes down rather than break the rule
                carry.insert(0, cur[0][-1])
                cur[0] = cur[0][:-1]
            else:
                break
        if not _fits("".join(carry), width, measure):  # the rule cannot be kept in this width: break plainly
            cur += carry[:-1]
            carry = [tok]
        lines.append("".join(cur).rstrip())
        cur = []
        queue.extendleft(reversed(carry))  # placed again on the new line (they fit there: checked above)
    if cur or not lines:
        lines.append("".join(cur).rstrip())
    return lines


def _trim_spaces(cur: list[str]) -> None:
    while cur and cur[-1].isspace():
        cur.pop()


def ellipsize(line: str, width: float, measure: Callable[[str], float]) -> str:
    """``line`` shortened until it and an ellipsis fit; no comma or opening mark left right before the ellipsis."""
    trailing = NO_END | frozenset("，、；：,;: \t")
    line = line.rstrip()
    while line and (line[-1] in trailing or not _fits(line + ELLIPSIS, width, measure)):
        line = line[:-1]
    return line + ELLIPSIS


def lines_that_fit(height: float, ascent: float, descent: float, advance: float) -> int:
    """How many lines of a font (``ascent`` + ``descent`` of ink room, ``advance`` from one baseline to the next)
    fit in ``height`` without any of them leaving the box."""
    if height < ascent + descent:
        return 0
    return int((height - ascent - descent) // advance) + 1


def line_x(align: str, box_x: float, box_width: float, line_width: float) -> float:
    """The left edge of a line of ``line_width`` aligned in a box."""
    if align == "center":
        return box_x + (box_width - line_width) / 2
    if align == "right":
        return box_x + box_width - line_width
    return box_x


# ---- the template -------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Color = Annotated[str, Field(max_length=64, description="#RRGGBB")]


def _color(v: str) -> str:
    if not _COLOR.match(v):
        raise ValueError(f"{v!r} is not a colour; write #RRGGBB, e.g. #E83E3E")
    return v


class _Box(_Model):
    x: int = Field(ge=0, le=4000)
    y: int = Field(ge=0, le=8000)
    width: int = Field(gt=0, le=4000)
    height: int = Field(gt=0, le=8000)


class _TextStyle(_Model):
    size: int = Field(default=32, ge=8, le=240, description="font size in pixels")
    color: Color = "#222222"
    bold: bool = False
    align: Literal["left", "center", "right"] = "left"
    max_lines: int = Field(default=2, ge=1, le=30)
    line_height: float = Field(default=1.35, ge=1.0, le=3.0, description="baseline to baseline, × size")

    @field_validator("color")
    @classmethod
    def _c(cls, v: str) -> str:
        return _color(v)


class TextElement(_Box, _TextStyle):
    """A text box. ``title`` / ``subtitle`` / ``nickname`` default to that datum; ``text`` is free text. The text
    may use ``{placeholders}`` (see ``PLACEHOLDERS``)."""

    kind: Literal["title", "subtitle", "nickname", "text"]
    text: str | None = Field(default=None, max_length=1000)


class BulletsElement(_Box, _TextStyle):
    """Benefit points (利益点): one bullet per item — ``items`` or, when empty, the data's ``benefits``."""

    kind: Literal["bullets"]
    items: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=12)
    bullet: str = Field(default="•", min_length=1, max_length=2)
    bullet_color: Color | None = None
    max_lines: int = Field(default=2, ge=1, le=10, description="lines per item")
    gap: int = Field(default=8, ge=0, le=200, description="pixels between items")


class PriceElement(_Box):
    """Price anchor (价格锚点): 现价 large, then 原价 small and struck through (``{price}`` / ``{original_price}``)."""

    kind: Literal["price"]
    size: int = Field(default=64, ge=10, le=240)
    color: Color = "#E83E3E"
    original_color: Color = "#999999"
    original_label: str = Field(default="原价", max_length=10)
    currency: str = Field(default="¥", max_length=3)
    align: Literal["left", "center", "right"] = "left"

    @field_validator("color", "original_color")
    @classmethod
    def _c(cls, v: str) -> str:
        return _color(v)


class CountdownElement(_Box, _TextStyle):
    """Time left to the campaign's end (``{days}`` ``{hh}`` ``{mm}``); ``ended_text`` once it is over."""

    kind: Literal["countdown"]
    text: str = Field(default="距结束 {days} 天 {hh}:{mm}", max_length=200)
    ended_text: str = Field(default="活动已结束", max_length=200)
    max_lines: int = Field(default=1, ge=1, le=5)


class ScarcityElement(_Box, _TextStyle):
    """Scarcity (稀缺): ``{stock_left}`` rewards left; hidden when the data has no stock figure."""

    kind: Literal["scarcity"]
    text: str = Field(default="仅剩 {stock_left} 份", max_length=200)
    max_lines: int = Field(default=1, ge=1, le=5)


class LogoElement(_Box):
    """The brand logo, fitted inside the box (aspect kept): ``asset`` or else the data's ``logo``."""

    kind: Literal["logo"]
    asset: str | None = None

    @field_validator("asset")
    @classmethod
    def _a(cls, v: str | None) -> str | None:
        if v is not None and not _ASSET.match(v):
            raise ValueError("is not an asset id; upload the image and use the id it returns (64 hex digits)")
        return v


class AvatarElement(_Model):
    """The sharer's avatar cropped to a circle of ``size`` pixels (the nickname's first character when absent)."""

    kind: Literal["avatar"]
    x: int = Field(ge=0, le=4000)
    y: int = Field(ge=0, le=8000)
    size: int = Field(ge=16, le=1000)
    ring_color: Color | None = "#FFFFFF"
    ring_width: int = Field(default=4, ge=0, le=40)
    placeholder_color: Color = "#C8A27A"

    @field_validator("ring_color", "placeholder_color")
    @classmethod
    def _c(cls, v: str | None) -> str | None:
        return None if v is None else _color(v)


class QrElement(_Model):
    """The participant's QR code (their share link), ``size`` pixels square including a quiet zone."""

    kind: Literal["qr"]
    x: int = Field(ge=0, le=4000)
    y: int = Field(ge=0, le=8000)
    size: int = Field(ge=84, le=2000)
    dark: Color = "#000000"
    light: Color = "#FFFFFF"
    border: int = Field(default=2, ge=1, le=4, description="quiet zone in modules")

    @field_validator("dark", "light")
    @classmethod
    def _c(cls, v: str) -> str:
        return _color(v)


class RectElement(_Box):
    """A filled (rounded) rectangle — a card behind other elements."""

    kind: Literal["rect"]
    fill: Color = "#FFFFFF"
    radius: int = Field(default=0, ge=0, le=1000)

    @field_validator("fill")
    @classmethod
    def _c(cls, v: str) -> str:
        return _color(v)


Element = Annotated[
    TextElement
    | BulletsElement
    | PriceElement
    | CountdownElement
    | ScarcityElement
    | LogoElement
    | AvatarElement
    | QrElement
    | RectElement,
    Field(discriminator="kind"),
]
ELEMENT_KINDS = (
    "title",
    "subtitle",
    "nickname",
    "text",
    "bullets",
    "price",
    "countdown",
    "scarcity",
    "logo",
    "avatar",
    "qr",
    "rect",
)


class PosterTemplate(_Model):
    """A poster: canvas, background (colour, optional image asset ``cover``-fitted) and elements drawn in order."""

    width: int = Field(default=750, ge=200, le=2400)
    height: int = Field(default=1334, ge=200, le=4000)
    background: Color = "#FFF4E6"
    background_image: str | None = None
    elements: list[Element] = Field(default_factory=list, max_length=MAX_ELEMENTS)

    @field_validator("background")
    @classmethod
    def _c(cls, v: str) -> str:
        return _color(v)

    @field_validator("background_image")
    @classmethod
    def _a(cls, v: str | None) -> str | None:
        return LogoElement._a(v)  # type: ignore[operator]

    def key(self) -> str:
        """A stable hash of the template (for caches)."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


class PosterData(_Model):
    """What changes per poster: the sharer, the campaign's copy, prices, stock, end time, the QR link, images."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    nickname: str = Field(default="", max_length=64)
    title: str = Field(default="", max_length=200)
    subtitle: str = Field(default="", max_length=400)
    brand: str = Field(default="", max_length=100)
    benefits: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=12)
    price: Decimal | None = Field(default=None, ge=0)
    original_price: Decimal | None = Field(default=None, ge=0)
    stock_left: int | None = Field(default=None, ge=0)
    ends_at: datetime | None = None
    now: datetime | None = None
    qr_url: str = Field(default="", max_length=1000)
    avatar: bytes | None = Field(default=None, max_length=5_000_000)
    logo: bytes | None = Field(default=None, max_length=5_000_000)

    def key(self) -> str:
        """A stable hash of the data (images by their digest)."""
        raw = self.model_dump(mode="json", exclude={"avatar", "logo"})
        for name in ("avatar", "logo"):
            blob = getattr(self, name)
            raw[name] = hashlib.sha256(blob).hexdigest() if blob else None
        return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()


def _money(value: Decimal) -> str:
    q = value.quantize(Decimal("0.01"))
    return f"{q:f}".rstrip("0").rstrip(".") if "." in f"{q:f}" else f"{q:f}"


def values(data: PosterData) -> dict[str, str]:
    """The placeholder values of ``data`` (countdown from ``now`` to ``ends_at``; empty strings when unknown)."""
    out = {
        "nickname": data.nickname,
        "title": data.title,
        "subtitle": data.subtitle,
        "brand": data.brand,
        "stock_left": "" if data.stock_left is None else str(data.stock_left),
        "price": "" if data.price is None else _money(data.price),
        "original_price": "" if data.original_price is None else _money(data.original_price),
        "days": "",
        "hh": "",
        "mm": "",
    }
    if data.ends_at is not None and data.now is not None:
        left = max(0, int((data.ends_at - data.now).total_seconds()))
        out["days"] = str(left // 86400)
        out["hh"] = f"{left % 86400 // 3600:02d}"
        out["mm"] = f"{left % 3600 // 60:02d}"
    return out


def fill(text: str, vals: dict[str, str]) -> str:
    """``text`` with its ``{placeholders}`` replaced (``{{`` / ``}}`` are literal braces)."""
    return text.format_map(vals)


def default_text(el: TextElement) -> str:
    """The text of a text element: its own, else the datum its kind names."""
    if el.text is not None:
        return el.text
    return "" if el.kind == "text" else "{" + el.kind + "}"


def _check_placeholders(text: str, field: str) -> None:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        raise PosterError(f"{field}: {exc}; write {{{{ and }}}} for literal braces", field) from exc
    for name in names:
        if name not in PLACEHOLDERS:
            raise PosterError(
                f"{field}: unknown placeholder {{{name}}}; use one of {', '.join('{' + p + '}' for p in PLACEHOLDERS)}",
                field,
            )


def _path(loc: tuple[Any, ...], raw: Any) -> str:
    parts: list[str] = []
    node = raw
    skip_tag = False
    for p in loc:
        if skip_tag and isinstance(p, str) and p in ELEMENT_KINDS:
            skip_tag = False
            continue
        skip_tag = bool(parts) and parts[-1] == "elements" and isinstance(p, int)
        parts.append(str(p) if not isinstance(p, int) else f"[{p}]")
        node = node[p] if isinstance(node, (list, dict)) and _has(node, p) else None
    return "".join(p if p.startswith("[") or i == 0 else "." + p for i, p in enumerate(parts)) or "template"


def _has(node: Any, p: Any) -> bool:
    if isinstance(node, list):
        return isinstance(p, int) and p < len(node)
    return p in node


def parse_template(raw: Any) -> PosterTemplate:
    """Check a template (dict or model); raises ``PosterError`` naming the field (``elements[1].size``) and the fix."""
    if isinstance(raw, PosterTemplate):
        tpl = raw
    else:
        if not isinstance(raw, dict):
            raise PosterError("a poster template is a JSON object with width, height, background, elements", "template")
        try:
            tpl = PosterTemplate.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = _path(tuple(err["loc"]), raw)
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                field += ".kind"
                msg = f"element kind must be one of {', '.join(ELEMENT_KINDS)}"
            raise PosterError(f"{field}: {msg}", field) from exc
    for i, el in enumerate(tpl.elements):
        base = f"elements[{i}]"
        if isinstance(el, (AvatarElement, QrElement)):
            right, bottom = el.x + el.size, el.y + el.size
            wname, hname = "size", "size"
        else:
            right, bottom = el.x + el.width, el.y + el.height
            wname, hname = "width", "height"
        if right > tpl.width:
            raise PosterError(
                f"{base}.{wname}: the element ends at x={right}, past the canvas width {tpl.width}; "
                f"move it left or make it narrower",
                f"{base}.{wname}",
            )
        if bottom > tpl.height:
            raise PosterError(
                f"{base}.{hname}: the element ends at y={bottom}, past the canvas height {tpl.height}; "
                f"move it up or make it shorter",
                f"{base}.{hname}",
            )
        if isinstance(el, TextElement):
            if el.kind == "text" and not el.text:
                raise PosterError(f"{base}.text: a text element needs text", f"{base}.text")
            _check_placeholders(default_text(el), f"{base}.text")
        elif isinstance(el, BulletsElement):
            for j, item in enumerate(el.items):
                _check_placeholders(item, f"{base}.items[{j}]")
        elif isinstance(el, CountdownElement):
            _check_placeholders(el.text, f"{base}.text")
            _check_placeholders(el.ended_text, f"{base}.ended_text")
        elif isinstance(el, ScarcityElement):
            _check_placeholders(el.text, f"{base}.text")
    return tpl


def default_template() -> PosterTemplate:
    """The poster a campaign gets when it has none of its own (750×1334, the WeChat poster size)."""
    return parse_template(
        {
            "width": 750,
            "height": 1334,
            "background": "#FCE9D8",
            "elements": [
                {"kind": "rect", "x": 0, "y": 0, "width": 750, "height": 420, "fill": "#E8503A"},
                {"kind": "logo", "x": 40, "y": 36, "width": 200, "height": 64},
                {"kind": "avatar", "x": 40, "y": 130, "size": 96},
                {
                    "kind": "nickname",
                    "x": 156,
                    "y": 136,
                    "width": 554,
                    "height": 48,
                    "size": 30,
                    "color": "#FFFFFF",
                    "max_lines": 1,
                },
                {
                    "kind": "text",
                    "text": "邀请你一起参加",
                    "x": 156,
                    "y": 186,
                    "width": 554,
                    "height": 40,
                    "size": 24,
                    "color": "#FFE3D6",
                    "max_lines": 1,
                },
                {
                    "kind": "title",
                    "x": 40,
                    "y": 250,
                    "width": 670,
                    "height": 150,
                    "size": 48,
                    "bold": True,
                    "color": "#FFFFFF",
                    "max_lines": 2,
                    "line_height": 1.3,
                },
                {"kind": "rect", "x": 40, "y": 450, "width": 670, "height": 560, "fill": "#FFFFFF", "radius": 24},
                {
                    "kind": "subtitle",
                    "x": 70,
                    "y": 480,
                    "width": 610,
                    "height": 90,
                    "size": 28,
                    "color": "#555555",
                    "max_lines": 2,
                },
                {
                    "kind": "bullets",
                    "x": 70,
                    "y": 585,
                    "width": 610,
                    "height": 230,
                    "size": 28,
                    "color": "#333333",
                    "bullet_color": "#E8503A",
                    "max_lines": 2,
                },
                {"kind": "price", "x": 70, "y": 825, "width": 610, "height": 100, "size": 64},
                {"kind": "scarcity", "x": 70, "y": 935, "width": 300, "height": 48, "size": 26, "color": "#E8503A"},
                {
                    "kind": "countdown",
                    "x": 380,
                    "y": 935,
                    "width": 300,
                    "height": 48,
                    "size": 26,
                    "color": "#666666",
                    "align": "right",
                },
                {"kind": "qr", "x": 275, "y": 1040, "size": 200},
                {
                    "kind": "text",
                    "text": "长按识别二维码 帮 TA 助力",
                    "x": 40,
                    "y": 1254,
                    "width": 670,
                    "height": 44,
                    "size": 26,
                    "color": "#8A5A3C",
                    "align": "center",
                    "max_lines": 1,
                },
            ],
        }
    )
