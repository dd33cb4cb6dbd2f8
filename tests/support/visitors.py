"""A signed-in visitor of the public pages, for tests that call page helpers directly."""

from __future__ import annotations

from siyu.public.visitor import Visitor


def signed_in(sid: str = "sid1", lang: str = "zh", device: str = "d" * 16) -> Visitor:
    """Person ``unionid:u1`` of brand ``demo`` with session ``sid`` on a known device."""
    return Visitor(
        brand_id="demo",
        id_type="unionid",
        id_value="u1",
        nickname="",
        region="",
        sid=sid,
        device=device,
        ip="127.0.0.1",
        lang=lang,
        new_device=False,
    )
