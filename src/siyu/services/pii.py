"""Who may reveal a customer's personal data, the reveal itself (an audit-log entry), and the masked customer 360.

Policy (masked by default everywhere in the console and the API answers it uses):

- **admin**: may reveal any customer of the brand;
- **operator**: may reveal when the brand allows it (``brands.settings["pii"]["operators_may_reveal"] = true``);
- **guide**: sees their own customers masked too and may reveal one of them (they need to phone them); another
  guide's customer is "not found", as everywhere.  Like WeCom SCRMs (the mobile is a per-role permission, not shown
  to every seat by default), the number is one click away for the customer's own guide and that click is audited.

Every reveal writes ``pii.reveal`` (who, which customer, which fields — never the values)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from siyu.domain.models import Role
from siyu.domain.pii import FIELD_MASKS, mask_identifier, mask_record
from siyu.services import audit
from siyu.services import customers as customer_service
from siyu.services.brands import User, get_brand
from siyu.services.context import Context
from siyu.services.errors import Forbidden, SiyuError

PROFILE_FIELDS = ("name", "phone", "email")
MAX_REASON = 200


def operators_may_reveal(ctx: Context, brand_id: str) -> bool:
    """Whether the brand lets operators reveal personal data (off unless ``settings.pii.operators_may_reveal``)."""
    pii = (get_brand(ctx, brand_id).settings or {}).get("pii") or {}
    return isinstance(pii, dict) and pii.get("operators_may_reveal") is True


def set_operators_may_reveal(ctx: Context, user: User, allowed: bool) -> dict[str, Any]:
    """Let the brand's operators reveal personal data, or not (admins only; audited as ``pii.settings``)."""
    from siyu.stores.state.models import BrandRow

    if user.role != Role.ADMIN:
        raise Forbidden("only an admin of the brand may change who may reveal personal data", "role")
    with ctx.sessions() as s, s.begin():
        row = s.get(BrandRow, user.brand_id)
        if row is None:
            raise SiyuError(f"brand {user.brand_id!r} does not exist", "brand_id")
        row.settings = {**(row.settings or {}), "pii": {"operators_may_reveal": allowed}}  # a new dict: written
    audit.record(ctx, user.brand_id, user, "pii.settings", user.brand_id, {"operators_may_reveal": allowed})
    return {"operators_may_reveal": allowed}


def may_reveal(ctx: Context, user: User) -> bool:
    """Whether the user's role may reveal personal data at all (guides: only their own customers' data)."""
    if user.role == Role.OPERATOR:
        return operators_may_reveal(ctx, user.brand_id)
    return user.role in (Role.ADMIN, Role.GUIDE)


def check_reveal(ctx: Context, user: User) -> None:
    """Raise Forbidden (field ``role``) when the user may not reveal personal data."""
    if not may_reveal(ctx, user):
        raise Forbidden(
            "personal data is masked for operators of this brand; an admin may reveal it, or allow operators with "
            'the brand setting {"pii": {"operators_may_reveal": true}}',
            "role",
        )


def reveal(ctx: Context, user: User, customer_id: str, reason: str = "") -> dict[str, Any]:
    """The clear name / phone / email and identifiers of one customer the user may see; audited."""
    if len(reason) > MAX_REASON:
        raise SiyuError(f"reason is at most {MAX_REASON} characters", "reason")
    check_reveal(ctx, user)
    cid = customer_service.resolve_customer(ctx, user, customer_id)  # NotFound outside a guide's scope
    view = customer_service.get_customer_360(ctx, user, cid, 1, 1)
    profile = {k: view.profile.get(k) for k in PROFILE_FIELDS}
    identities = [{"type": i["id_type"], "value": i["id_value"]} for i in view.identities]
    relations = [{"external_userid": r["external_userid"], "guide_id": r["guide_id"]} for r in view.relations]
    fields = [k for k, v in profile.items() if v] + sorted({i["type"] for i in identities})
    audit.record(ctx, user.brand_id, user, "pii.reveal", cid, {"fields": fields, "reason": reason})
    return {"customer_id": cid, "profile": profile, "identities": identities, "relations": relations}


def masked_rows(
    ctx: Context, user: User, rows: list[dict[str, Any]], clear: bool, target: str, reason: str = ""
) -> list[dict[str, Any]]:
    """``rows`` (customer rows of a list: fulfilment addresses, helpers, ...) masked, or, with ``clear``, as they
    are after the reveal check and one ``pii.reveal`` audit entry for the list (``target``, how many rows)."""
    if not clear:
        return [_mask_row(r) for r in rows]
    check_reveal(ctx, user)
    audit.record(ctx, user.brand_id, user, "pii.reveal", target, {"rows": len(rows), "reason": reason[:MAX_REASON]})
    return rows


def _mask_row(row: dict[str, Any]) -> dict[str, Any]:
    out = mask_record(row, ("customer_name", "phone", "email", "recipient", "external_userid", "unionid", "openid"))
    ident = out.get("helper_identity")
    if isinstance(ident, str) and ":" in ident:
        t, v = ident.split(":", 1)
        out["helper_identity"] = f"{t}:{mask_identifier(t, v)}"
    return out


def mask_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (customer rows) with its personal columns (``FIELD_MASKS``: name, phone, email, WeCom ids)
    masked for display; other columns unchanged."""
    out = frame.copy()
    for col, fn in FIELD_MASKS.items():
        if col in out.columns:
            out[col] = out[col].map(lambda v, f=fn: f(v) if isinstance(v, str) and v else v)
    return out


def masked_360(view: dict[str, Any]) -> dict[str, Any]:
    """A customer 360 answer (``Customer360.as_dict()``) with personal data masked: profile name / phone /
    email, identifiers by type, relations' external_userid, the identifiers named in merges."""
    out = dict(view)
    out["profile"] = mask_record(view["profile"], PROFILE_FIELDS)
    out["identities"] = [mask_record(i, ()) for i in view["identities"]]
    out["relations"] = [mask_record(r, ("external_userid",)) for r in view["relations"]]
    merges = []
    for m in view["merges"]:
        m = dict(m)
        for t, v in (("id_type", "id_value"), ("other_type", "other_value")):
            if isinstance(m.get(t), str) and isinstance(m.get(v), str):
                m[v] = mask_identifier(m[t], m[v])
        merges.append(m)
    out["merges"] = merges
    out["pii"] = "masked"
    return out
