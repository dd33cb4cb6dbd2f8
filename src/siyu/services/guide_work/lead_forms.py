"""Public lead forms (线索表单): a brand defines forms (``lead_forms`` in the brand's settings: title, optional store
and region for the pool's store / region rules); a person leaves name, phone and consent on ``/m/{brand}/form/{id}``
(``siyu.public.lead_form``); OneID resolves the phone to a customer (a new one when unknown) and the customer
enters the pool as a lead (source ``form``, the form id) unless they already have a guide or a lead.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm.attributes import flag_modified

from siyu.domain.identity import IdentifierError, IdType, normalize
from siyu.services import oneid
from siyu.services.brands import User
from siyu.services.campaigns.people import person
from siyu.services.context import Context
from siyu.services.errors import NotFound, SiyuError
from siyu.services.guide_work import pool
from siyu.services.guide_work import settings as gw
from siyu.stores.state.models import BrandRow, utcnow

KEY = "lead_forms"
FORM_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_FORMS = 200
MAX_NAME = 40
SOURCE_KIND = "lead_form"


def _forms(ctx: Context, brand_id: str) -> dict[str, dict[str, Any]]:
    with ctx.sessions() as s:
        b = s.get(BrandRow, brand_id)
        return dict(((b.settings or {}).get(KEY) or {}) if b else {})


def list_forms(ctx: Context, brand_id: str) -> list[dict[str, Any]]:
    """The brand's lead forms with their public path."""
    return [{"form_id": k, **v, "path": f"/m/{brand_id}/form/{k}"} for k, v in sorted(_forms(ctx, brand_id).items())]


def get_form(ctx: Context, brand_id: str, form_id: str) -> dict[str, Any]:
    """One active form (NotFound otherwise — also for an unknown brand)."""
    f = _forms(ctx, brand_id[:64]).get(form_id[:64])
    if not f or not f.get("active", True):
        raise NotFound(f"lead form {form_id!r} not found", "form_id")
    return {"form_id": form_id, **f}


def set_form(
    ctx: Context,
    user: User,
    form_id: str,
    title: str,
    store_id: str | None = None,
    region: str | None = None,
    active: bool = True,
) -> dict[str, Any]:
    """Create or change a lead form (admins and operators)."""
    gw.require_manager(user, "define lead forms")
    if not FORM_ID.fullmatch(form_id):
        raise SiyuError("form_id: 1..64 of a-z, 0-9, _ and -, starting with a letter or digit", "form_id")
    title = (title or "").strip()
    if not 1 <= len(title) <= 60:
        raise SiyuError("title: 1..60 characters, shown at the top of the form", "title")
    with ctx.sessions() as s, s.begin():
        b = s.get(BrandRow, user.brand_id)
        if b is None:
            raise NotFound(f"brand {user.brand_id!r} does not exist", "brand_id")
        forms = dict((b.settings or {}).get(KEY) or {})
        if form_id not in forms and len(forms) >= MAX_FORMS:
            raise SiyuError(f"a brand has at most {MAX_FORMS} lead forms; deactivate or reuse one", "form_id")
        forms[form_id] = {
            "title": title,
            "store_id": store_id or None,
            "region": region or None,
            "active": bool(active),
            "updated_at": utcnow().isoformat(),
            "updated_by": user.username,
        }
        b.settings = {**(b.settings or {}), KEY: forms}
        flag_modified(b, "settings")
    return {"form_id": form_id, **forms[form_id], "path": f"/m/{user.brand_id}/form/{form_id}"}


def submit(
    ctx: Context, brand_id: str, form_id: str, name: str, phone: str, consent: bool, lang: str = "zh"
) -> dict[str, Any]:
    """A person leaves their details: checked (name 1..40, a phone, consent given), recorded for OneID with the
    name as a trait, resolved to a customer, put in the pool. Returns ``{"customer_id", "lead": added | skipped
    reason}``."""
    form = get_form(ctx, brand_id, form_id)
    name = (name or "").strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise SiyuError("请填写姓名（1-40 个字）" if lang != "en" else f"name: 1..{MAX_NAME} characters", "name")
    try:
        ident = normalize(IdType.PHONE.value, phone)
    except IdentifierError:
        raise SiyuError(
            "请填写正确的手机号，例如 13800138000" if lang != "en" else "phone: give a mobile number, e.g. 13800138000",
            "phone",
        ) from None
    if not consent:
        raise SiyuError(
            "请勾选同意，我们才能联系您" if lang != "en" else "consent: tick the box so that we may contact you",
            "consent",
        )
    ref = f"lead-form:{form_id}:{ident.value}"
    with oneid.observation_transaction(ctx) as tx:  # the name as a trait of this person
        oneid.add_observations(
            tx, brand_id, [oneid.Observation(SOURCE_KIND, ref, oneid.now(), (ident,), {"name": name})]
        )
    oneid.resolve_pending(ctx, brand_id)
    who = person(ctx, brand_id, ident, fresh=True)
    if who.customer_id is None:
        raise SiyuError("the form could not be saved; try again in a minute", "phone")
    got = pool.enter(
        ctx,
        brand_id,
        "form",
        [who.customer_id],
        "form",
        store_id=form.get("store_id"),
        region=form.get("region"),
        source_ref=form_id,
    )
    return {
        "customer_id": who.customer_id,
        "lead": "added" if got["added"] else (got["skipped"][0]["reason"] if got["skipped"] else "skipped"),
    }
