"""Campaign posters: CJK line breaking (禁则), no clipped glyphs, the QR code, the cache, template errors."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import segno
from PIL import Image

from siyu.config import Settings
from siyu.domain.poster import (
    ELLIPSIS,
    NO_END,
    NO_START,
    PosterData,
    PosterError,
    break_lines,
    default_template,
    parse_template,
    values,
)
from siyu.services import posters
from siyu.services.context import Context

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TEXTS = [
    "邀请 3 位好友助力，免费领取限量版保温杯（价值199元）！",
    "他说：「今天的活动真不错。」我们都同意，对吧？是的！",
    "新品上市《春日限定》礼盒——仅限前 100 名，先到先得……",
    "积分翻倍：每消费 1 元得 2 积分，可兑换 iPhone 15 Pro 或 AirPods。",
    "Hello world, this is an English sentence with some reasonably long words like internationalization.",
    "（注意）活动解释权归品牌所有；如有疑问，请联系导购「小王」。",
]


def char_width(s: str) -> float:
    """A fixed-pitch measure: CJK characters 2 units, everything else 1."""
    return sum(2 if ord(c) > 0x2E80 else 1 for c in s)


def check_rules(text: str, lines: list[str], width: float, measure: object) -> None:
    for i, line in enumerate(lines):
        assert measure(line) <= width, (line, width)  # type: ignore[operator]
        if i > 0:
            assert line[:1] not in NO_START, (i, lines)
        if i < len(lines) - 1:
            assert line[-1:] not in NO_END, (i, lines)
        assert line == line.strip(), line


@pytest.mark.parametrize("text", TEXTS)
def test_lines_obey_kinsoku_and_keep_every_character(text: str) -> None:
    for width in range(8, 60):
        lines = break_lines(text, width, char_width)
        check_rules(text, lines, width, char_width)
        # nothing lost, only the spaces at the breaks
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_breaks_between_chinese_characters_and_moves_one_down_before_a_closing_mark() -> None:
    assert break_lines("你好世界", 4, char_width) == ["你好", "世界"]
    # "，" may not start a line: 好 moves down with it
    assert break_lines("你好，世界", 4, char_width) == ["你", "好，", "世界"]
    # "（" may not end a line: it moves down
    assert break_lines("买一送一（限时）", 10, char_width) == ["买一送一", "（限时）"]


def test_latin_words_stay_whole_unless_one_alone_is_wider_than_the_line() -> None:
    for width in range(6, 20):
        lines = break_lines("兑换 iPhone 15 Pro 一台", width, char_width)
        for word in ("iPhone", "15", "Pro"):
            assert sum(word in line.split(" ") for line in lines) == 1, (width, lines)
    assert break_lines("internationalization", 8, char_width) == ["internat", "ionaliza", "tion"]


def test_ellipsis_when_max_lines_is_exceeded() -> None:
    text = TEXTS[0]
    lines = break_lines(text, 12, char_width, max_lines=2)
    assert len(lines) == 2
    assert lines[1].endswith(ELLIPSIS) and char_width(lines[1]) <= 12
    full = break_lines(text, 12, char_width)
    assert len(full) > 2 and lines[0] == full[0]
    # no comma or opening mark left dangling before the ellipsis
    assert break_lines("一二三四五，六七八九", 6, char_width, max_lines=1) == ["一二…"]
    # a text that fits is left alone
    assert break_lines("你好", 12, char_width, max_lines=1) == ["你好"]


def test_real_font_lines_fit_and_obey_the_rules() -> None:
    f = posters.face(30)
    for text in TEXTS:
        for width in (150, 237, 400, 611):
            lines = posters.layout(text, width, f, 0, "text")
            check_rules(text, lines, width, f.exact)


def test_a_box_too_narrow_for_one_character_names_the_field() -> None:
    with pytest.raises(PosterError) as err:
        break_lines("中", 1, char_width, field="elements[3].width")
    assert err.value.field == "elements[3].width"


# ---- rendering ----------------------------------------------------------------------------------------------


def ink(img: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    arr = np.asarray(img.convert("RGB")).astype(int)
    return np.abs(arr - np.array(background)).sum(axis=2) > 0


@pytest.mark.parametrize("size", [12, 23, 40, 67])
@pytest.mark.parametrize("align", ["left", "center", "right"])
def test_no_glyph_leaves_its_box(size: int, align: str) -> None:
    x, y, w = 37, 41, 311
    for text in [*TEXTS, "gjpqy ÅÉÇ ｜ 【测试】「引号」 ¥199 …… ——", "「"]:
        el = {"kind": "text", "text": text, "x": x, "y": y, "width": w, "size": size, "align": align}
        el["height"] = posters.face(size).ascent * 6 + 10
        el["max_lines"] = 4
        tpl = {"width": 400, "height": 700, "background": "#FFFFFF", "elements": [el]}
        img = posters.render_image(tpl, PosterData(now=NOW))
        m = ink(img, (255, 255, 255))
        h = el["height"]
        assert m[y + 1 : y + h - 1, x + 1 : x + w - 1].any(), "the text was drawn"
        outside = m.copy()
        outside[y + 1 : y + h - 1, x + 1 : x + w - 1] = False  # only the box's interior may have ink
        assert not outside.any(), (text, size, align, np.argwhere(outside)[:5])


def test_bullets_and_price_stay_in_their_boxes() -> None:
    els = [
        {"kind": "bullets", "x": 20, "y": 20, "width": 300, "height": 200, "size": 26, "max_lines": 2},
        {"kind": "price", "x": 20, "y": 240, "width": 300, "height": 90, "size": 80},
    ]
    data = PosterData(benefits=TEXTS[:4], price=Decimal("99.9"), original_price=Decimal("199"))
    img = posters.render_image({"width": 400, "height": 400, "background": "#FFFFFF", "elements": els}, data)
    m = ink(img, (255, 255, 255))
    inside = np.zeros_like(m)
    for el in els:
        inside[el["y"] + 1 : el["y"] + el["height"] - 1, el["x"] + 1 : el["x"] + el["width"] - 1] = True
        assert m[el["y"] : el["y"] + el["height"], el["x"] : el["x"] + el["width"]].any()
    assert not (m & ~inside).any()


def test_qr_code_on_the_poster_is_the_participants_link() -> None:
    url = "https://siyu.example.com/m/c/42/h/Zk3mQ9xTt2Lw"
    tpl = default_template()
    data = PosterData(nickname="小鱼", title="助力领好礼", qr_url=url, now=NOW)
    img = Image.open(io.BytesIO(posters.render(tpl, data))).convert("L")
    qr_el = next(el for el in tpl.elements if el.kind == "qr")
    expected = [list(row) for row in segno.make_qr(url, error="m", mask=posters.QR_MASK).matrix]
    border = qr_el.border
    n = len(expected) + 2 * border
    place = posters.qr_placement(qr_el, n)
    px = np.asarray(img)
    seen = [
        [
            int(
                px[
                    place.top + (r + border) * place.scale + place.scale // 2,
                    place.left + (c + border) * place.scale + place.scale // 2,
                ]
                < 128
            )
            for c in range(len(expected))
        ]
        for r in range(len(expected))
    ]
    assert seen == expected
    other = [list(row) for row in segno.make_qr(url + "x", error="m", mask=posters.QR_MASK).matrix]
    assert seen != other or len(other) != len(expected)
    # the quiet zone is light
    assert (px[place.top : place.top + border * place.scale, place.left : place.left + n * place.scale] > 128).all()


def test_countdown_and_scarcity_values() -> None:
    v = values(PosterData(ends_at=NOW + timedelta(days=2, hours=3, minutes=12, seconds=59), now=NOW, stock_left=12))
    assert (v["days"], v["hh"], v["mm"], v["stock_left"]) == ("2", "03", "12", "12")
    assert values(PosterData(price=Decimal("99.50"), original_price=Decimal("199")))["price"] == "99.5"


def test_png_is_the_drawn_image() -> None:
    data = PosterData(nickname="阿花", title="拼团立减", qr_url="https://x.example/a", now=NOW)
    img = posters.render_image(default_template(), data)
    back = Image.open(io.BytesIO(posters.png_bytes(img)))
    assert back.size == (750, 1334)
    assert np.array_equal(np.asarray(back.convert("RGB")), np.asarray(img))


def test_avatar_is_cropped_to_a_circle() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (200, 120), (0, 200, 0)).save(buf, "PNG")
    el = {"kind": "avatar", "x": 10, "y": 10, "size": 100, "ring_width": 0}
    tpl = {"width": 200, "height": 200, "background": "#FFFFFF", "elements": [el]}
    px = np.asarray(posters.render_image(tpl, PosterData(avatar=buf.getvalue())))
    assert tuple(px[60, 60]) == (0, 200, 0)  # centre: the photo
    assert tuple(px[12, 12]) == (255, 255, 255)  # corner of the square: outside the circle


# ---- cache ------------------------------------------------------------------------------------------------------


def test_cache_returns_identical_bytes_from_memory_and_from_files(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    data = PosterData(nickname="小鱼", title="助力", qr_url="https://x.example/q", ends_at=NOW + timedelta(days=1))
    ctx = Context.open(settings)
    try:
        first = posters.poster_png(ctx, default_template(), data)
        cache = ctx.extras["poster_cache"]
        assert (cache.hits, cache.misses) == (0, 1)
        again = posters.poster_png(ctx, default_template(), data)
        assert again == first and cache.hits == 1
        other = posters.poster_png(ctx, default_template(), data.model_copy(update={"nickname": "大鱼"}))
        assert other != first and cache.misses == 2
    finally:
        ctx.close()
    ctx = Context.open(settings)  # a new process: the files answer
    try:
        assert posters.poster_png(ctx, default_template(), data) == first
        assert ctx.extras["poster_cache"].file_hits == 1
    finally:
        ctx.close()


# ---- template errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda t: t["elements"][0].update(fill="red"), "elements[0].fill"),
        (lambda t: t["elements"][1].update(size=3), "elements[1].size"),
        (lambda t: t["elements"][2].update(width=900), "elements[2].width"),
        (lambda t: t["elements"][2].update(text="你好 {name}"), "elements[2].text"),
        (lambda t: t["elements"][3].update(kind="sticker"), "elements[3].kind"),
        (lambda t: t.update(width=50), "width"),
        (lambda t: t["elements"][1].update(colour="#000000"), "elements[1].colour"),
    ],
)
def test_bad_template_names_the_field(change: object, field: str) -> None:
    tpl = {
        "width": 750,
        "height": 1334,
        "elements": [
            {"kind": "rect", "x": 0, "y": 0, "width": 750, "height": 200, "fill": "#FF0000"},
            {"kind": "qr", "x": 10, "y": 300, "size": 200},
            {"kind": "text", "text": "你好 {nickname}", "x": 10, "y": 600, "width": 300, "height": 60},
            {"kind": "title", "x": 10, "y": 700, "width": 300, "height": 60},
        ],
    }
    parse_template(tpl)
    change(tpl)  # type: ignore[operator]
    with pytest.raises(PosterError) as err:
        parse_template(tpl)
    assert err.value.field == field, err.value.message
    assert field in err.value.message


def test_text_box_too_low_for_its_font_names_the_height() -> None:
    tpl = {"elements": [{"kind": "title", "x": 0, "y": 0, "width": 300, "height": 40, "size": 40}]}
    with pytest.raises(PosterError) as err:
        posters.render(tpl, PosterData(title="标题"))
    assert err.value.field == "elements[0].height" and "taller" in err.value.message


def test_qr_too_small_for_a_long_link_names_the_size() -> None:
    tpl = {"elements": [{"kind": "qr", "x": 0, "y": 0, "size": 84}]}
    with pytest.raises(PosterError) as err:
        posters.render(tpl, PosterData(qr_url="https://example.com/" + "x" * 300))
    assert err.value.field == "elements[0].size"


def test_random_texts_never_break_the_rules() -> None:
    rng = random.Random(8)
    alphabet = "春夏秋冬你我他好的了在是有，。！？；：、）》」』（《「『 abcXYZ12"
    checked = 0
    while checked < 400:
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))
        # the rules can always be kept when no more than 2 marks follow one another and a line holds 6+ characters
        runs = [len(r) for r in "".join("x" if c in NO_START | NO_END else " " for c in text).split()]
        if max(runs, default=0) > 2:
            continue
        checked += 1
        width = rng.randint(12, 40)
        lines = break_lines(text, width, char_width)
        check_rules(text, lines, width, char_width)
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_uploaded_logo_and_background_are_drawn(tmp_path: Path) -> None:
    ctx = Context.open(Settings(data_dir=tmp_path / "data"))
    try:

        def png(color: tuple[int, int, int], size: tuple[int, int]) -> bytes:
            buf = io.BytesIO()
            Image.new("RGB", size, color).save(buf, "PNG")
            return buf.getvalue()

        logo = posters.save_asset(ctx, png((200, 0, 0), (400, 100)))
        back = posters.save_asset(ctx, png((0, 0, 200), (100, 300)))
        assert posters.save_asset(ctx, png((200, 0, 0), (400, 100))) == logo  # content-addressed
        tpl = {
            "width": 300,
            "height": 300,
            "background_image": back,
            "elements": [{"kind": "logo", "asset": logo, "x": 0, "y": 0, "width": 200, "height": 200}],
        }
        px = np.asarray(Image.open(io.BytesIO(posters.poster_png(ctx, tpl, PosterData()))).convert("RGB"))
        assert tuple(px[100, 100]) == (200, 0, 0)  # logo fitted (aspect kept: 200×50, centred in its box)
        assert tuple(px[20, 100]) == (0, 0, 200) and tuple(px[250, 250]) == (0, 0, 200)  # background covers
        with pytest.raises(PosterError) as err:
            posters.render({**tpl, "background_image": "0" * 64}, PosterData(), posters.posters_dir(ctx) / "assets")
        assert err.value.field == "background_image"
        with pytest.raises(PosterError) as err:
            posters.save_asset(ctx, b"not an image")
        assert err.value.field == "image"
    finally:
        ctx.close()
