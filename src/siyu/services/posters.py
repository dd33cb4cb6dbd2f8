"""Draw campaign posters with Pillow: ``render(template, data)`` → PNG bytes; ``poster_png(ctx, ...)`` caches them.

Fonts (Noto Sans CJK SC, regular and bold) are loaded once per size. Text boxes keep a 1-pixel inner margin and
lines are placed by the font's real ascent + descent, so no glyph's ink leaves its box; widths are summed from
cached per-character advances and every laid-out line is checked against its real ink box (re-laid with the exact
measure when kerning made it wider). The PNG is written without row filters at zlib level 1 (most of a poster is
flat colour): about 3× faster than Pillow's adaptive filtering for a few % more bytes.

The cache key is a hash of the renderer version + template + data (images by digest; ``now`` only matters — to
the minute — when the template shows a countdown), kept in an in-memory LRU and as files under
``<data_dir>/posters/cache``. Uploaded images (logo, background) live under ``<data_dir>/posters/assets`` named by
their SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from siyu.domain.poster import (
    AvatarElement,
    BulletsElement,
    CountdownElement,
    LogoElement,
    PosterData,
    PosterError,
    PosterTemplate,
    PriceElement,
    QrElement,
    RectElement,
    ScarcityElement,
    TextElement,
    break_lines,
    default_text,
    ellipsize,
    fill,
    line_x,
    lines_that_fit,
    parse_template,
    values,
)

if TYPE_CHECKING:
    from siyu.services.context import Context

RENDERER_VERSION = "1"
FONT_DIR = Path(os.environ.get("SIYU_POSTER_FONTS", "/usr/share/fonts/opentype/noto"))
FONT_FILES = {False: "NotoSansCJK-Regular.ttc", True: "NotoSansCJK-Bold.ttc"}
FONT_INDEX_SC = 2  # in the .ttc collections: 0 JP, 1 KR, 2 SC, 3 TC, 4 HK
PAD = 1  # inner margin of every text box, pixels
MAX_ASSET_BYTES = 5_000_000
MAX_ASSET_SIDE = 4000


# ---- fonts and measuring ----------------------------------------------------------------------------------------


@dataclass
class _Face:
    font: ImageFont.FreeTypeFont
    ascent: int
    descent: int
    advances: dict[str, float]
    extents: dict[str, tuple[int, int]]
    masks: dict[str, tuple[Image.Image, int, int]]

    def fast(self, s: str) -> float:
        """Width by cached per-character advances (no kerning; checked afterwards by ``exact``)."""
        adv = self.advances
        total = 0.0
        for ch in s:
            w = adv.get(ch)
            if w is None:
                w = adv[ch] = self.font.getlength(ch)
            total += w
        return total

    def extent(self, s: str) -> tuple[int, int]:
        """(left, right) of the ink of ``s`` drawn at x=0 (left ≤ 0 when a glyph overhangs to the left)."""
        hit = self.extents.get(s)
        if hit is not None:
            return hit
        if not s:
            return 0, 0
        left, _, right, _ = self.font.getbbox(s, anchor="ls")
        out = self.extents[s] = (min(0, int(left)), int(right))
        if len(self.extents) > 4096:
            self.extents.clear()
        return out

    def exact(self, s: str) -> float:
        left, right = self.extent(s)
        return right - left

    def draw(self, canvas: Image.Image, x: int, baseline: int, s: str, color: tuple[int, int, int]) -> None:
        """Draw ``s`` with its baseline's left end at (x, baseline); the line's coverage mask is cached, so a
        line drawn before (a campaign's title on every participant's poster) costs one paste."""
        hit = self.masks.get(s)
        if hit is None:
            left, top, right, bottom = (int(v) for v in self.font.getbbox(s, anchor="ls"))
            mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
            ImageDraw.Draw(mask).text((-left, -top), s, font=self.font, fill=255, anchor="ls")
            hit = self.masks[s] = (mask, left, top)
            if len(self.masks) > 1024:
                self.masks.pop(next(iter(self.masks)))
        mask, left, top = hit
        canvas.paste(color, (x + left, baseline + top, x + left + mask.width, baseline + top + mask.height), mask)


@lru_cache(maxsize=128)
def face(size: int, bold: bool = False) -> _Face:
    """The Noto Sans CJK SC face at ``size`` pixels (loaded once)."""
    path = FONT_DIR / FONT_FILES[bold]
    if not path.exists():
        raise PosterError(f"font {path} is missing; install fonts-noto-cjk or set SIYU_POSTER_FONTS", "font")
    font = ImageFont.truetype(str(path), size, index=FONT_INDEX_SC, layout_engine=ImageFont.Layout.BASIC)
    ascent, descent = font.getmetrics()
    return _Face(font, ascent, descent, {}, {}, {})


def layout(text: str, width: int, f: _Face, max_lines: int, field: str) -> list[str]:
    """Lines of ``text`` for a box ``width`` wide in face ``f`` (fast widths, then each line checked exactly)."""
    lines = break_lines(text, width, f.fast, max_lines, field)
    if any(f.exact(line) > width for line in lines):
        lines = break_lines(text, width, f.exact, max_lines, field)
    return lines


# ---- images -------------------------------------------------------------------------------------------------------


class _ImageLRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[Any, Image.Image] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Any, make: Callable[[], Image.Image]) -> Image.Image:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        img = make()
        with self.lock:
            self.items[key] = img
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return img


_IMAGES = _ImageLRU(64)


def _decode(blob: bytes, field: str) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(blob))
        if img.width > MAX_ASSET_SIDE or img.height > MAX_ASSET_SIDE:
            raise PosterError(f"{field}: image is {img.width}×{img.height}; at most {MAX_ASSET_SIDE} px a side", field)
        img.load()
    except PosterError:
        raise
    except Exception as exc:  # Pillow raises several kinds for bad images
        raise PosterError(f"{field}: not a readable image (PNG, JPEG, WEBP or GIF): {exc}", field) from exc
    return img.convert("RGBA")


def _asset_path(assets_dir: Path | None, asset: str, field: str) -> Path:
    path = (assets_dir or Path("/nonexistent")) / f"{asset}.img"
    if not path.exists():
        raise PosterError(f"{field}: image asset {asset[:12]}… not found; upload it first", field)
    return path


def _cover(img: Image.Image, w: int, h: int) -> Image.Image:
    scale = max(w / img.width, h / img.height)
    rw, rh = max(w, round(img.width * scale)), max(h, round(img.height * scale))
    img = img.resize((rw, rh), Image.Resampling.LANCZOS)
    left, top = (rw - w) // 2, (rh - h) // 2
    return img.crop((left, top, left + w, top + h))


def _contain(img: Image.Image, w: int, h: int) -> Image.Image:
    scale = min(w / img.width, h / img.height)
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.LANCZOS)


@lru_cache(maxsize=32)
def _circle_mask(size: int) -> Image.Image:
    big = Image.new("L", (size * 4, size * 4), 0)
    ImageDraw.Draw(big).ellipse((0, 0, size * 4 - 1, size * 4 - 1), fill=255)
    return big.resize((size, size), Image.Resampling.LANCZOS)


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


# ---- QR -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QrPlacement:
    """Where a QR code lands: its top-left pixel, pixels per module and modules a side (quiet zone included)."""

    left: int
    top: int
    scale: int
    modules: int


QR_MASK = 2  # a fixed data mask: segno's choice of the best of 8 costs ~9 ms a code; every mask is valid QR


def qr_matrix(url: str, border: int) -> list[list[int]]:
    """The QR modules of ``url`` (1 = dark), quiet zone of ``border`` modules included (segno: a regular — never
    Micro — QR code, error level M or better, mask ``QR_MASK``)."""
    import segno

    qr = segno.make_qr(url, error="m", mask=QR_MASK)
    return [[1 if v else 0 for v in row] for row in qr.matrix_iter(scale=1, border=border)]


def qr_placement(el: QrElement, modules: int, field: str = "qr") -> QrPlacement:
    """The placement of a ``modules``-wide code in ``el`` (whole pixels per module, centred)."""
    scale = el.size // modules
    if scale < 2:
        raise PosterError(
            f"{field}.size: {el.size} px is too small for this link's QR code ({modules} modules need "
            f"{modules * 2} px at 2 px a module); make it larger",
            f"{field}.size",
        )
    off = (el.size - modules * scale) // 2
    return QrPlacement(el.x + off, el.y + off, scale, modules)


def _draw_qr(canvas: Image.Image, el: QrElement, url: str, field: str) -> None:
    if not url:
        return
    matrix = qr_matrix(url, el.border)
    n = len(matrix)
    place = qr_placement(el, n, field)
    mask = Image.frombytes("L", (n, n), bytes(255 * v for row in matrix for v in row))
    mask = mask.resize((n * place.scale, n * place.scale), Image.Resampling.NEAREST)
    canvas.paste(_rgb(el.light), (el.x, el.y, el.x + el.size, el.y + el.size))
    canvas.paste(_rgb(el.dark), (place.left, place.top, place.left + mask.width, place.top + mask.height), mask)


# ---- drawing --------------------------------------------------------------------------------------------------


def _text_lines(
    canvas: Image.Image,
    lines: list[str],
    f: _Face,
    box: tuple[int, int, int, int],
    align: str,
    advance: int,
    color: tuple[int, int, int],
) -> None:
    x, y, w, _h = box
    for i, line in enumerate(lines):
        if not line:
            continue
        left, right = f.extent(line)
        lx = round(line_x(align, x + PAD, w - 2 * PAD, right - left)) - left
        baseline = y + PAD + f.ascent + i * advance
        f.draw(canvas, lx, baseline, line, color)


def _advance(f: _Face, size: int, line_height: float) -> int:
    return max(round(size * line_height), f.ascent + f.descent)


def _text_box(
    canvas: Image.Image,
    el: TextElement | CountdownElement | ScarcityElement,
    text: str,
    field: str,
) -> None:
    f = face(el.size, el.bold)
    adv = _advance(f, el.size, el.line_height)
    fit = lines_that_fit(el.height - 2 * PAD, f.ascent, f.descent, adv)
    if fit == 0:
        need = f.ascent + f.descent + 2 * PAD
        raise PosterError(
            f"{field}.height: {el.height} px is too low for {el.size} px text (needs {need} px); make it taller "
            f"or the text smaller",
            f"{field}.height",
        )
    lines = layout(text, el.width - 2 * PAD, f, min(el.max_lines, fit), f"{field}.width")
    _text_lines(canvas, lines, f, (el.x, el.y, el.width, el.height), el.align, adv, _rgb(el.color))


def _bullets(canvas: Image.Image, el: BulletsElement, items: list[str], field: str) -> None:
    f = face(el.size, el.bold)
    adv = _advance(f, el.size, el.line_height)
    indent = round(f.exact(el.bullet + " "))
    inner = el.width - 2 * PAD - indent
    if inner < el.size:
        raise PosterError(f"{field}.width: too narrow for bullets of {el.size} px text; widen it", f"{field}.width")
    top, bottom = el.y, el.y + el.height
    bullet_color = _rgb(el.bullet_color or el.color)
    for item in items:
        fit = lines_that_fit(bottom - top - 2 * PAD, f.ascent, f.descent, adv)
        if fit == 0:
            break
        full = break_lines(item, inner, f.fast, 0, f"{field}.width")
        if any(f.exact(line) > inner for line in full):
            full = break_lines(item, inner, f.exact, 0, f"{field}.width")
        keep = min(el.max_lines, fit)
        lines = full if len(full) <= keep else [*full[: keep - 1], ellipsize(full[keep - 1], inner, f.exact)]
        _text_lines(canvas, [el.bullet], f, (el.x, top, indent + 2 * PAD, 0), "left", adv, bullet_color)
        _text_lines(canvas, lines, f, (el.x + indent, top, el.width - indent, 0), "left", adv, _rgb(el.color))
        top += (len(lines) - 1) * adv + f.ascent + f.descent + el.gap
        if fit < min(len(full), el.max_lines):
            break  # this item was cut by the box's height: the box is full


def _price(canvas: Image.Image, draw: ImageDraw.ImageDraw, el: PriceElement, vals: dict[str, str], field: str) -> None:
    if not vals["price"]:
        return
    now_text = f"{el.currency}{vals['price']}"
    was_text = f"{el.original_label}{el.currency}{vals['original_price']}" if vals["original_price"] else ""
    size = el.size
    while True:
        big, small = face(size, True), face(max(8, round(size * 0.42)))
        gap = round(size * 0.3) if was_text else 0
        width = big.exact(now_text) + gap + (small.exact(was_text) if was_text else 0)
        height = big.ascent + big.descent + 2 * PAD
        if width <= el.width - 2 * PAD and height <= el.height:
            break
        if size <= 10:
            raise PosterError(f"{field}.width: the price does not fit; make the box larger", f"{field}.width")
        size -= 2
    x = round(line_x(el.align, el.x + PAD, el.width - 2 * PAD, width))
    baseline = el.y + PAD + big.ascent
    left, right = big.extent(now_text)
    big.draw(canvas, x - left, baseline, now_text, _rgb(el.color))
    if was_text:
        sx = x + (right - left) + gap
        sl, sr = small.extent(was_text)
        small.draw(canvas, sx - sl, baseline, was_text, _rgb(el.original_color))
        # the strike-through line: across the middle of the digits
        mid = baseline - round(small.font.size * 0.36)
        thick = max(1, round(small.font.size / 14))
        draw.rectangle((sx, mid, sx + (sr - sl) - 1, mid + thick - 1), fill=_rgb(el.original_color))


def _avatar(canvas: Image.Image, el: AvatarElement, data: PosterData, field: str) -> None:
    s = el.size
    ring = el.ring_width if el.ring_color else 0
    if ring:
        canvas.paste(_rgb(el.ring_color or "#FFFFFF"), (el.x, el.y, el.x + s, el.y + s), _circle_mask(s))
    inner = s - 2 * ring
    if inner <= 0:
        return
    box = (el.x + ring, el.y + ring, el.x + ring + inner, el.y + ring + inner)
    if data.avatar:
        img = _decode(data.avatar, "avatar").convert("RGB")
        side = min(img.width, img.height)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side)).resize((inner, inner), Image.Resampling.LANCZOS)
        canvas.paste(img, box, _circle_mask(inner))
        return
    canvas.paste(_rgb(el.placeholder_color), box, _circle_mask(inner))
    initial = data.nickname.strip()[:1]
    if initial:
        f = face(max(8, round(inner * 0.45)), True)
        left, right = f.extent(initial)
        cx = box[0] + (inner - (right - left)) // 2 - left
        baseline = box[1] + (inner - f.ascent - f.descent) // 2 + f.ascent
        f.draw(canvas, cx, baseline, initial, (255, 255, 255))


def _logo(canvas: Image.Image, el: LogoElement, data: PosterData, assets_dir: Path | None, field: str) -> None:
    if el.asset:
        path = _asset_path(assets_dir, el.asset, f"{field}.asset")
        key: Any = ("asset", el.asset, el.width, el.height)
        img = _IMAGES.get(key, lambda: _contain(_decode(path.read_bytes(), f"{field}.asset"), el.width, el.height))
    elif data.logo:
        blob = data.logo
        key = ("logo", hashlib.sha256(blob).hexdigest(), el.width, el.height)
        img = _IMAGES.get(key, lambda: _contain(_decode(blob, "logo"), el.width, el.height))
    else:
        return
    ox, oy = el.x + (el.width - img.width) // 2, el.y + (el.height - img.height) // 2
    canvas.paste(img, (ox, oy), img)


def _background(tpl: PosterTemplate, assets_dir: Path | None) -> Image.Image:
    if not tpl.background_image:
        return Image.new("RGB", (tpl.width, tpl.height), _rgb(tpl.background))
    asset = tpl.background_image
    path = _asset_path(assets_dir, asset, "background_image")

    def make() -> Image.Image:
        img = _decode(path.read_bytes(), "background_image")
        base = Image.new("RGBA", (tpl.width, tpl.height), (*_rgb(tpl.background), 255))
        base.alpha_composite(_cover(img, tpl.width, tpl.height))
        return base.convert("RGB")

    return _IMAGES.get(("bg", asset, tpl.width, tpl.height, tpl.background), make).copy()


def png_bytes(img: Image.Image) -> bytes:
    """``img`` (RGB) as a PNG: rows unfiltered, zlib level 1 (fast; posters are mostly flat colour)."""
    w, h = img.size
    rows = np.zeros((h, w * 3 + 1), dtype=np.uint8)  # column 0: filter type 0 (None) for every row
    rows[:, 1:] = np.asarray(img, dtype=np.uint8).reshape(h, w * 3)
    body = rows.tobytes()
    comp = zlib.compressobj(1, zlib.DEFLATED, 15, 9)
    idat = comp.compress(body) + comp.flush()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def render_image(
    template: PosterTemplate | dict[str, Any], data: PosterData, assets_dir: Path | None = None
) -> Image.Image:
    """The poster as a Pillow image (RGB). Raises ``PosterError`` naming the field that cannot be drawn."""
    tpl = parse_template(template)
    canvas = _background(tpl, assets_dir)
    draw = ImageDraw.Draw(canvas)
    vals = values(data)
    for i, el in enumerate(tpl.elements):
        field = f"elements[{i}]"
        if isinstance(el, RectElement):
            box = (el.x, el.y, el.x + el.width - 1, el.y + el.height - 1)
            if el.radius:
                draw.rounded_rectangle(box, el.radius, fill=_rgb(el.fill))
            else:
                draw.rectangle(box, fill=_rgb(el.fill))
        elif isinstance(el, TextElement):
            text = fill(default_text(el), vals)
            if text.strip():
                _text_box(canvas, el, text, field)
        elif isinstance(el, BulletsElement):
            items = [fill(t, vals) for t in (el.items or data.benefits)]
            if items:
                _bullets(canvas, el, [t for t in items if t.strip()], field)
        elif isinstance(el, PriceElement):
            _price(canvas, draw, el, vals, field)
        elif isinstance(el, CountdownElement):
            if data.ends_at is not None and data.now is not None:
                text = el.ended_text if data.now >= data.ends_at else el.text
                _text_box(canvas, el, fill(text, vals), field)
        elif isinstance(el, ScarcityElement):
            if data.stock_left is not None:
                _text_box(canvas, el, fill(el.text, vals), field)
        elif isinstance(el, LogoElement):
            _logo(canvas, el, data, assets_dir, field)
        elif isinstance(el, AvatarElement):
            _avatar(canvas, el, data, field)
        elif isinstance(el, QrElement):
            _draw_qr(canvas, el, data.qr_url, field)
    return canvas


def render(template: PosterTemplate | dict[str, Any], data: PosterData, assets_dir: Path | None = None) -> bytes:
    """The poster as PNG bytes (uncached)."""
    return png_bytes(render_image(template, data, assets_dir))


# ---- cache and assets ------------------------------------------------------------------------------------------


class PosterCache:
    """Rendered posters by key: an in-memory LRU (``max_bytes``) in front of files under ``directory``."""

    def __init__(self, directory: Path, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.items: OrderedDict[str, bytes] = OrderedDict()
        self.used = 0
        self.hits = self.file_hits = self.misses = 0
        self.lock = threading.Lock()

    def _file(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.png"

    def get(self, key: str) -> bytes | None:
        with self.lock:
            blob = self.items.get(key)
            if blob is not None:
                self.items.move_to_end(key)
                self.hits += 1
                return blob
        path = self._file(key)
        if path.exists():
            blob = path.read_bytes()
            self._remember(key, blob)
            self.file_hits += 1
            return blob
        self.misses += 1
        return None

    def put(self, key: str, blob: bytes) -> None:
        path = self._file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, path)
        self._remember(key, blob)

    def _remember(self, key: str, blob: bytes) -> None:
        with self.lock:
            if key not in self.items:
                self.used += len(blob)
            self.items[key] = blob
            self.items.move_to_end(key)
            while self.used > self.max_bytes and len(self.items) > 1:
                _, old = self.items.popitem(last=False)
                self.used -= len(old)

    def close(self) -> None:
        with self.lock:
            self.items.clear()
            self.used = 0


def posters_dir(ctx: Context) -> Path:
    return ctx.settings.data_dir / "posters"


def _cache(ctx: Context) -> PosterCache:
    cache = ctx.extras.get("poster_cache")
    if not isinstance(cache, PosterCache):
        cache = ctx.extras.setdefault("poster_cache", PosterCache(posters_dir(ctx) / "cache"))
    return cache


def cache_key(template: PosterTemplate, data: PosterData) -> str:
    """The cache key of a poster (renderer version + template + data)."""
    raw = f"{RENDERER_VERSION}:{template.key()}:{data.key()}"
    return hashlib.sha256(raw.encode()).hexdigest()


def poster_png(ctx: Context, template: PosterTemplate | dict[str, Any], data: PosterData) -> bytes:
    """The poster as PNG bytes, from the cache when the same template + data was drawn before. A countdown is
    drawn as of ``data.now`` (default: this minute); templates without one ignore ``now``."""
    tpl = parse_template(template)
    if any(isinstance(el, CountdownElement) for el in tpl.elements):
        if data.now is None:
            data = data.model_copy(update={"now": datetime.now(UTC).replace(second=0, microsecond=0)})
    elif data.now is not None:
        data = data.model_copy(update={"now": None})
    cache = _cache(ctx)
    key = cache_key(tpl, data)
    blob = cache.get(key)
    if blob is None:
        blob = render(tpl, data, posters_dir(ctx) / "assets")
        cache.put(key, blob)
    return blob


def save_asset(ctx: Context, content: bytes) -> str:
    """Store an uploaded image (logo / background) and return its id (SHA-256) for templates to refer to."""
    if len(content) > MAX_ASSET_BYTES:
        raise PosterError(f"image: {len(content)} bytes; at most {MAX_ASSET_BYTES}", "image")
    _decode(content, "image")
    asset = hashlib.sha256(content).hexdigest()
    path = posters_dir(ctx) / "assets" / f"{asset}.img"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)
    return asset
