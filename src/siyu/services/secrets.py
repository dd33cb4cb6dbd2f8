"""Secrets at rest: sealing/opening through the process's key (``siyu.stores.state.secrets``), the legacy-plain
migration and key rotation (``siyu secrets rotate``).

Where secrets live: ``brands.settings["wecom"]`` (secret, token, encoding_aes_key), ``["sidebar"]["agent_secret"]``,
``brands.settings["webhooks"][topic]["secret"]`` and every value of ``messaging_providers.secrets``.
A plain value found on read is encrypted in place (``reseal_all``), so an old database is migrated the first time
anything reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import select

from siyu.services.context import Context
from siyu.stores.state import secrets as store
from siyu.stores.state.messaging_models import ProviderRow
from siyu.stores.state.models import BrandRow

WECOM_FIELDS: tuple[str, ...] = ("secret", "token", "encoding_aes_key")
_BOX = "secret_box"
_OPENED = "secret_opened"
_OPENED_MAX = 256


def box(ctx: Context, reload: bool = False) -> store.SecretBox:
    """The process's keys (cached; reloaded when the key file changed, e.g. after a rotation elsewhere)."""
    path = store.key_file(ctx.settings)
    stamp = path.stat().st_mtime_ns if path.exists() else 0
    cached = ctx.extras.get(_BOX)
    if reload or cached is None or cached[1] != stamp:
        ctx.extras.pop(_OPENED, None)  # values opened with the old keys are opened again
        ctx.extras[_BOX] = (store.load_box(ctx.settings), path.stat().st_mtime_ns if path.exists() else 0)
    return ctx.extras[_BOX][0]  # type: ignore[no-any-return]


def seal(ctx: Context, value: str) -> str:
    """``value`` encrypted for storage."""
    return box(ctx).seal(value)


def open_value(ctx: Context, value: str, what: str = "secret") -> str:
    """The plain text of a stored value (reloading the keys once when it names a key this process lacks).
    Opened values are remembered per process (a callback reads the brand's WeCom config on every request)."""
    keys = box(ctx)
    opened: dict[str, str] = ctx.extras.setdefault(_OPENED, {})
    plain = opened.get(value)
    if plain is not None:
        return plain
    try:
        plain = keys.open(value, what)
    except store.SecretKeyError:
        plain = box(ctx, reload=True).open(value, what)
    if len(opened) >= _OPENED_MAX:
        opened.clear()
    opened[value] = plain
    return plain


def has_plain(values: dict[str, Any], fields: tuple[str, ...] | None = None) -> bool:
    """True when a non-empty secret among ``values`` (``fields`` of it, or all) is stored in plain text."""
    keys = fields if fields is not None else tuple(values)
    return any(isinstance(values.get(k), str) and values[k] and not store.is_sealed(values[k]) for k in keys)


def _reseal_dict(b: store.SecretBox, values: dict[str, Any], fields: tuple[str, ...], what: str) -> bool:
    changed = False
    for k in fields:
        v = values.get(k)
        if b.needs_reseal(v):
            values[k] = b.seal(b.open(str(v), f"{what}.{k}"))
            changed = True
    return changed


def reseal_all(ctx: Context) -> int:
    """Encrypt every plain secret and re-encrypt every one sealed with an older key, with the primary key, in one
    transaction. Returns how many values were rewritten."""
    b = box(ctx)
    n = 0
    with ctx.sessions() as s, s.begin():
        for brand in s.scalars(select(BrandRow).with_for_update()):
            settings = dict(brand.settings or {})
            changed = False
            wecom = dict(settings.get("wecom") or {})
            if wecom and _reseal_dict(b, wecom, WECOM_FIELDS, "wecom"):
                n += sum(1 for k in WECOM_FIELDS if wecom.get(k) != (settings["wecom"] or {}).get(k))
                settings["wecom"], changed = wecom, True
            hooks = {t: dict(h) for t, h in (settings.get("webhooks") or {}).items() if isinstance(h, dict)}
            for topic, hook in hooks.items():
                if _reseal_dict(b, hook, ("secret",), f"webhooks.{topic}"):
                    n += 1
                    settings["webhooks"], changed = hooks, True
            sidebar = dict(settings.get("sidebar") or {})  # the WeCom sidebar app's secret (siyu.services.sidebar)
            if sidebar.get("agent_secret") and _reseal_dict(b, sidebar, ("agent_secret",), "sidebar"):
                n += 1
                settings["sidebar"], changed = sidebar, True
            if changed:
                brand.settings = settings  # a new dict, so the JSON column is written
        for row in s.scalars(select(ProviderRow).with_for_update()):
            secrets = dict(row.secrets or {})
            fields = tuple(secrets)
            before = dict(secrets)
            if _reseal_dict(b, secrets, fields, f"{row.channel}.{row.provider}"):
                n += sum(1 for k in fields if secrets[k] != before[k])
                row.secrets = secrets
    return n


@dataclass(frozen=True)
class Rotation:
    """What ``rotate`` did: the key ids before and after, how many secrets it rewrote and where the key lives."""

    old_key: str
    new_key: str
    rewritten: int
    source: str


def rotate(ctx: Context) -> Rotation:
    """Re-encrypt every stored secret with a new key.

    Key file mode: a new key is generated and written first as the primary line with the old keys after it, then
    every secret is re-encrypted, then the old keys are dropped from the file — a crash in between leaves a file
    that still opens everything. ``SIYU_SECRET_KEY`` mode: set the new passphrase in ``SIYU_SECRET_KEY`` and the old
    one in ``SIYU_SECRET_KEY_PREVIOUS``, then rotate re-encrypts everything with the new one."""
    current = box(ctx, reload=True)
    old = current.primary_id
    if current.source == "SIYU_SECRET_KEY":
        n = reseal_all(ctx)
        return Rotation(old, old, n, current.source)
    path = store.key_file(ctx.settings)
    file_keys = store.read_key_file(path) if path.exists() else []
    new_key = Fernet.generate_key()
    store.write_key_file(path, [new_key, *file_keys])
    box(ctx, reload=True)
    n = reseal_all(ctx)
    store.write_key_file(path, [new_key])
    return Rotation(old, box(ctx, reload=True).primary_id, n, f"key file {path}")
