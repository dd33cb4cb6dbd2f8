"""WeCom's trusted-domain verification file (可信域名校验文件).

Before WeCom accepts siyu's host as the sidebar app's trusted domain (应用管理 → the app → 网页授权及JS-SDK / 可信域名),
it asks the admin to download ``WW_verify_<16 letters or digits>.txt`` and host it at the domain's web root. An
admin sets it here (``siyu wecom verify-file set``, ``PUT /api/sidebar/verify-file``) and siyu serves it at
``/<name>`` with its exact bytes (``siyu.sidebar.verify``).

It is kept per brand (in ``brands.settings``), because each brand is its own WeCom company with its own file; every
brand's file is served at the root of the one deployment (their names differ; two brands cannot hold the same
name with different bytes).
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm.attributes import flag_modified

from siyu.services import audit
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Conflict, NotFound, SiyuError
from siyu.stores.state.models import BrandRow, utcnow

NAME = re.compile(r"WW_verify_[A-Za-z0-9]{16}\.txt")
MAX_BYTES = 1024  # WeCom's file holds the 16-character code
KEY = "wecom_verify_file"


def _public(brand_id: str, d: dict[str, Any]) -> dict[str, Any]:
    content = base64.b64decode(d["content_b64"])
    code = d["name"].removeprefix("WW_verify_").removesuffix(".txt")
    return {
        "brand_id": brand_id,
        "name": d["name"],
        "path": "/" + d["name"],
        "bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "content_is_code": content.strip() == code.encode(),  # what WeCom's files hold
        "set_at": d.get("set_at"),
        "set_by": d.get("set_by", ""),
    }


def check(name: str, content: bytes) -> None:
    """SiyuError naming the field when the name or the content cannot be WeCom's verification file."""
    if not NAME.fullmatch(name or ""):
        raise SiyuError(
            f"{name!r} is not a WeCom verification file name; it looks like WW_verify_ + 16 letters or digits + "
            ".txt (download it from the app's 可信域名 page)",
            "name",
        )
    if not content or len(content) > MAX_BYTES:
        raise SiyuError(f"the file has {len(content)} bytes; WeCom's file has 1..{MAX_BYTES}", "content")


def set_file(ctx: Context, brand_id: str, name: str, content: bytes, by: User | str = "") -> dict[str, Any]:
    """Keep ``name`` with its exact ``content`` as the brand's verification file (replacing the previous one); an
    audit entry ``wecom.verify_file.set`` names who (``by``: the user, or e.g. ``"cli"``), the name and size."""
    check(name, content)
    stored = {
        "name": name,
        "content_b64": base64.b64encode(content).decode(),
        "set_at": utcnow().isoformat(),
        "set_by": by.username if isinstance(by, User) else by,
    }
    with ctx.sessions() as s, s.begin():
        for other in s.scalars(select(BrandRow).where(BrandRow.id != brand_id)).all():
            theirs = (other.settings or {}).get(KEY) or {}
            if theirs.get("name") == name and theirs.get("content_b64") != stored["content_b64"]:
                raise Conflict(f"brand {other.id!r} already serves {name} with other content", "name")
        brand = s.get(BrandRow, brand_id)
        if brand is None:
            raise NotFound(f"brand {brand_id!r} does not exist", "brand_id")
        brand.settings = {**(brand.settings or {}), KEY: stored}
        flag_modified(brand, "settings")
    detail = {"name": name, "bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    audit.record(ctx, brand_id, by or "unknown", "wecom.verify_file.set", name, detail)
    return _public(brand_id, stored)


def get_file(ctx: Context, brand_id: str) -> dict[str, Any] | None:
    """The brand's verification file (name, size, checksum, when and by whom set), or None."""
    with ctx.sessions() as s:
        brand = s.get(BrandRow, brand_id)
        d = dict((brand.settings or {}).get(KEY) or {}) if brand else {}
    return _public(brand_id, d) if d else None


def clear_file(ctx: Context, brand_id: str, by: User | str = "") -> bool:
    """Stop serving the brand's verification file (an audit entry ``wecom.verify_file.clear``); False when it had
    none (no entry)."""
    with ctx.sessions() as s, s.begin():
        brand = s.get(BrandRow, brand_id)
        if brand is None or KEY not in (brand.settings or {}):
            return False
        name = str(((brand.settings or {}).get(KEY) or {}).get("name") or "")
        brand.settings = {k: v for k, v in (brand.settings or {}).items() if k != KEY}
        flag_modified(brand, "settings")
    audit.record(ctx, brand_id, by or "unknown", "wecom.verify_file.clear", name, {"name": name})
    return True


def content_of(ctx: Context, name: str) -> bytes | None:
    """The exact bytes served at ``/<name>``, or None (not a verification file name, or no brand holds it)."""
    if not NAME.fullmatch(name or ""):
        return None
    with ctx.sessions() as s:
        for settings in s.scalars(select(BrandRow.settings)).all():
            d = (settings or {}).get(KEY) or {}
            if d.get("name") == name:
                return base64.b64decode(d["content_b64"])
    return None
