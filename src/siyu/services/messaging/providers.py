"""Per-brand provider settings (state table ``messaging_providers``) and the marketing cap (brand settings).

Secrets (AccessKeySecret, SMTP password) are stored but never returned: ``public_settings`` shows only whether
each is set. Guides cannot read or change provider settings.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from siyu.connectors.email import SECURITY, SmtpSettings
from siyu.connectors.sms import AliyunSms
from siyu.connectors.sms.aliyun import ENDPOINT
from siyu.domain.contact_cap import DailyCap
from siyu.domain.models import Role
from siyu.services import secrets as sealing
from siyu.services.brands import User, get_brand
from siyu.services.context import Context
from siyu.services.errors import Forbidden, SiyuError
from siyu.stores.state.messaging_models import ProviderRow
from siyu.stores.state.models import BrandRow, utcnow

# channel → provider → (public fields, secret fields, required fields)
FIELDS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]] = {
    "sms": {
        "aliyun": (
            ("access_key_id", "sign_name", "endpoint", "region_id", "timeout"),
            ("access_key_secret",),
            ("access_key_id", "access_key_secret", "sign_name"),
        )
    },
    "email": {
        "smtp": (
            ("host", "port", "security", "username", "from_address", "from_name"),
            ("password",),
            ("host", "from_address"),
        )
    },
}


def require_admin(user: User) -> None:
    """Provider settings are for admins and operators only."""
    if user.role == Role.GUIDE:
        raise Forbidden("guides cannot configure messaging providers; ask an operator or admin", "role")


def _check(channel: str, provider: str, config: dict[str, Any]) -> None:
    if config.get("endpoint"):
        url = urlparse(str(config["endpoint"]))
        if url.scheme not in ("http", "https") or not url.netloc:
            raise SiyuError("endpoint must be an http(s) URL, e.g. https://dysmsapi.aliyuncs.com/", "endpoint")
    if config.get("timeout") is not None:
        try:
            config["timeout"] = float(config["timeout"])
        except (TypeError, ValueError) as exc:
            raise SiyuError("timeout must be seconds, e.g. 10", "timeout") from exc
        if not 0.1 <= config["timeout"] <= 60:
            raise SiyuError("timeout must be between 0.1 and 60 seconds", "timeout")
    if channel == "email":
        try:
            port = int(config.get("port") or 587)
        except (TypeError, ValueError) as exc:
            raise SiyuError("port must be a number, e.g. 587 (STARTTLS) or 465 (SSL)", "port") from exc
        if not 0 < port < 65536:
            raise SiyuError("port must be between 1 and 65535", "port")
        config["port"] = port
        if (config.get("security") or "starttls") not in SECURITY:
            raise SiyuError(f"security must be one of {', '.join(SECURITY)}", "security")
        if "@" not in str(config.get("from_address", "@")):
            raise SiyuError("from_address must be an email address, e.g. crm@brand.com", "from_address")


def set_provider(ctx: Context, user: User, channel: str, provider: str, values: dict[str, Any]) -> dict[str, Any]:
    """Store the brand's provider of ``channel``; secret fields left empty keep their stored value."""
    require_admin(user)
    if channel not in FIELDS:
        raise SiyuError(f"channel {channel!r} has no providers; one of {', '.join(FIELDS)}", "channel")
    if provider not in FIELDS[channel]:
        raise SiyuError(
            f"provider {provider!r} is not known for {channel}; one of {', '.join(FIELDS[channel])}", "provider"
        )
    public, secret, required = FIELDS[channel][provider]
    unknown = set(values) - set(public) - set(secret)
    if unknown:
        name = sorted(unknown)[0]
        raise SiyuError(f"{name!r} is not a setting of {provider}; settings: {', '.join(public + secret)}", name)
    for k, v in values.items():
        if v is not None and len(str(v)) > 500:
            raise SiyuError(f"{k} is too long (at most 500 characters)", k)
    config = {k: values[k] for k in public if values.get(k) not in (None, "")}
    _check(channel, provider, config)
    with ctx.sessions() as s:
        row = s.get(ProviderRow, (user.brand_id, channel))
        old_secrets = dict(row.secrets) if row is not None and row.provider == provider else {}
        secrets = {k: sealing.seal(ctx, str(values.get(k) or old_secrets.get(k) or "")) for k in secret}
        secrets = {k: v for k, v in secrets.items() if v}
        for k in required:
            if not (config.get(k) or secrets.get(k)):
                raise SiyuError(f"{k} is required for {provider}", k)
        if row is None:
            row = ProviderRow(brand_id=user.brand_id, channel=channel)
            s.add(row)
        row.provider, row.config, row.secrets = provider, config, secrets
        row.updated_by, row.updated_at = user.username, utcnow()
        s.commit()
    return public_settings(ctx, user)[channel]


def _row(ctx: Context, brand_id: str, channel: str) -> ProviderRow | None:
    with ctx.sessions() as s:
        row = s.get(ProviderRow, (brand_id, channel))
    if row is not None and sealing.has_plain(row.secrets or {}):  # stored before encryption at rest: encrypt it
        sealing.reseal_all(ctx)
    return row


def _secret(ctx: Context, row: ProviderRow, name: str) -> str:
    """The plain text of the provider's secret ``name`` ("" when not set)."""
    value = (row.secrets or {}).get(name)
    return sealing.open_value(ctx, str(value), f"{row.channel}.{name}") if value else ""


def public_settings(ctx: Context, user: User) -> dict[str, Any]:
    """Every channel's provider and public settings; secrets only as ``<name>_set: true/false``."""
    require_admin(user)
    out: dict[str, Any] = {"marketing_daily_cap": marketing_cap(ctx, user.brand_id).per_day}
    for channel, providers in FIELDS.items():
        row = _row(ctx, user.brand_id, channel)
        if row is None:
            out[channel] = None
            continue
        _public, secret, _ = providers[row.provider]
        view: dict[str, Any] = {"provider": row.provider, **row.config}
        view.update({f"{k}_set": bool(row.secrets.get(k)) for k in secret})
        view["updated_by"], view["updated_at"] = row.updated_by, row.updated_at.isoformat()
        out[channel] = view
    return out


def sms_provider(ctx: Context, brand_id: str) -> tuple[AliyunSms, str]:
    """The brand's SMS provider and default sign name; a clear error when none is set."""
    row = _row(ctx, brand_id, "sms")
    if row is None:
        raise SiyuError(
            "no SMS provider is set for this brand; set one under 消息渠道 / PUT /api/messaging/providers/sms",
            "channel",
        )
    c = row.config
    return (
        AliyunSms(
            str(c["access_key_id"]),
            _secret(ctx, row, "access_key_secret"),
            endpoint=str(c.get("endpoint") or ENDPOINT),
            region_id=str(c.get("region_id") or "cn-hangzhou"),
            timeout=float(c.get("timeout") or 10.0),
        ),
        str(c.get("sign_name", "")),
    )


def smtp_settings(ctx: Context, brand_id: str) -> SmtpSettings:
    """The brand's SMTP settings; a clear error when none are set."""
    row = _row(ctx, brand_id, "email")
    if row is None:
        raise SiyuError(
            "no SMTP server is set for this brand; set one under 消息渠道 / PUT /api/messaging/providers/email",
            "channel",
        )
    c = row.config
    return SmtpSettings(
        host=str(c["host"]),
        port=int(c.get("port") or 587),
        security=str(c.get("security") or "starttls"),
        username=str(c.get("username") or ""),
        password=_secret(ctx, row, "password"),
        from_address=str(c["from_address"]),
        from_name=str(c.get("from_name") or ""),
    )


def marketing_cap(ctx: Context, brand_id: str) -> DailyCap:
    """The brand's per-customer daily cap on marketing messages (``brands.settings['messaging']``; default 1)."""
    settings = (get_brand(ctx, brand_id).settings or {}).get("messaging") or {}
    return DailyCap(int(settings.get("marketing_daily_cap", 1)))


def set_marketing_cap(ctx: Context, user: User, per_day: int) -> DailyCap:
    """Change the brand's cap (0-20 per customer per day)."""
    require_admin(user)
    cap = DailyCap(per_day)
    with ctx.sessions() as s:
        row = s.get(BrandRow, user.brand_id)
        assert row is not None
        settings = dict(row.settings or {})
        settings["messaging"] = {**(settings.get("messaging") or {}), "marketing_daily_cap": per_day}
        row.settings = settings
        s.commit()
    return cap
