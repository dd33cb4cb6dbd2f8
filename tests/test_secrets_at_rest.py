"""Secrets encrypted at rest: WeCom secret/token/EncodingAESKey, SMS/SMTP provider secrets and webhook signing
secrets never appear in the state database's rows nor in API answers; plain legacy rows are encrypted on first read;
a wrong key is a clear error; `siyu secrets rotate` re-encrypts everything with a new key (file and env modes)."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from siyu.api.app import create_app
from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services import brand_webhooks, brands, messaging
from siyu.services import secrets as sealing
from siyu.services.context import Context
from siyu.services.wecom.config import get_config
from siyu.stores.state.secrets import PREFIX, SecretKeyError, key_file, read_key_file, write_key_file
from tests.support.live import live_server

WECOM_SECRET = "Wq7sP3contact-secret-9f8e7d"
TOKEN = "tokenQ1w2E3r4"
AES = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SMS_SECRET = "Sx4kL9aliyun-secret-ZXCV"
SMTP_PASSWORD = "Mp2nB6smtp-pass-QWERTY"
HOOK_SECRET = "Hk5tR1hook-signing-secret-0123"
PLAIN = (WECOM_SECRET, TOKEN, AES, SMS_SECRET, SMTP_PASSWORD, HOOK_SECRET)


def raw_state(settings: Settings) -> str:
    """Every brand settings and provider secrets value as stored in the SQLite file (bypassing the ORM)."""
    con = sqlite3.connect(settings.data_dir / "state.sqlite")
    try:
        rows = con.execute("SELECT settings FROM brands").fetchall()
        rows += con.execute("SELECT secrets FROM messaging_providers").fetchall()
    finally:
        con.close()
    return "\n".join(str(r[0]) for r in rows)


def configure(ctx: Context) -> None:
    """Store every kind of secret through the services (as the API and CLI do)."""
    admin = brands.get_user(ctx, 1)
    messaging.set_provider(
        ctx, admin, "sms", "aliyun", {"access_key_id": "kid", "access_key_secret": SMS_SECRET, "sign_name": "思域"}
    )
    messaging.set_provider(
        ctx, admin, "email", "smtp", {"host": "127.0.0.1", "from_address": "a@b.cn", "password": SMTP_PASSWORD}
    )
    brand_webhooks.set_webhook(ctx, "acme", "anomalies", "https://example.com/hook", HOOK_SECRET)


@pytest.fixture
def acme(ctx: Context) -> Context:
    brands.create_brand(ctx, "acme", "Acme")
    brands.create_user(ctx, "acme", "admin", "s3cret-pass", Role.ADMIN)
    return ctx


def test_stored_encrypted_and_never_echoed(acme: Context) -> None:
    ctx = acme
    with live_server(create_app(ctx, with_console=False)) as base:
        token = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": "s3cret-pass"})
        h = {"Authorization": f"Bearer {token.json()['token']}"}
        body = {"corp_id": "ww123", "token": TOKEN, "encoding_aes_key": AES, "secret": WECOM_SECRET}
        put = httpx.put(f"{base}/api/wecom/config", headers=h, json=body)
        assert put.status_code == 200, put.text
        configure(ctx)
        answers = [put.text, httpx.get(f"{base}/api/wecom/config", headers=h).text]
        answers.append(httpx.get(f"{base}/api/messaging/providers", headers=h).text)
        answers.append(httpx.get(f"{base}/api/metrics/anomalies/deliveries", headers=h).text)
    for text in answers:  # masked: not even a recognisable prefix of a secret comes back
        for secret in PLAIN:
            assert secret not in text and secret[:6] not in text, (secret, text)
    shown = httpx.Response(200, text=answers[1]).json()
    assert shown["secret"] == "…" + WECOM_SECRET[-2:] and shown["token"] == "***"

    raw = raw_state(ctx.settings)
    for secret in PLAIN:
        assert secret not in raw
    assert raw.count(PREFIX) == 6  # wecom ×3, sms, smtp, webhook
    path = key_file(ctx.settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # the services still get the plain values
    cfg = get_config(ctx, "acme")
    assert (cfg.secret, cfg.token, cfg.encoding_aes_key) == (WECOM_SECRET, TOKEN, AES)
    assert messaging.providers.smtp_settings(ctx, "acme").password == SMTP_PASSWORD
    sms, _sign = messaging.providers.sms_provider(ctx, "acme")
    assert SMS_SECRET in vars(sms).values()
    hook = brand_webhooks.get_webhook(ctx, "acme", "anomalies")
    assert hook is not None and hook.secret == HOOK_SECRET


def test_plain_legacy_rows_are_encrypted_on_first_read(acme: Context) -> None:
    ctx = acme
    db = sqlite3.connect(ctx.settings.data_dir / "state.sqlite")
    import json

    legacy = {
        "wecom": {"corp_id": "ww1", "token": TOKEN, "encoding_aes_key": AES, "secret": WECOM_SECRET},
        "webhooks": {"anomalies": {"url": "https://example.com/h", "secret": HOOK_SECRET}},
    }
    db.execute("UPDATE brands SET settings = ? WHERE id = 'acme'", [json.dumps(legacy)])
    db.execute(
        "INSERT INTO messaging_providers (brand_id, channel, provider, config, secrets, updated_by, updated_at) "
        "VALUES ('acme', 'email', 'smtp', ?, ?, 'x', '2026-01-01 00:00:00')",
        [json.dumps({"host": "h", "from_address": "a@b.cn"}), json.dumps({"password": SMTP_PASSWORD})],
    )
    db.commit()
    db.close()
    assert WECOM_SECRET in raw_state(ctx.settings)

    assert get_config(ctx, "acme").secret == WECOM_SECRET  # the first read encrypts every plain secret
    raw = raw_state(ctx.settings)
    for secret in PLAIN:
        assert secret not in raw
    assert raw.count(PREFIX) == 5
    assert messaging.providers.smtp_settings(ctx, "acme").password == SMTP_PASSWORD
    hook = brand_webhooks.get_webhook(ctx, "acme", "anomalies")
    assert hook is not None and hook.secret == HOOK_SECRET


def test_wrong_key_is_a_clear_error(acme: Context, tmp_path: Path) -> None:
    ctx = acme
    configure(ctx)
    # the key file replaced by another key: the stored secret names the key it needs
    path = key_file(ctx.settings)
    old_keys = read_key_file(path)
    from cryptography.fernet import Fernet

    write_key_file(path, [Fernet.generate_key()])
    other = Context.open(ctx.settings)
    try:
        with pytest.raises(SecretKeyError) as err:
            messaging.providers.smtp_settings(other, "acme")
        msg = str(err.value)
        assert "email.password" in msg and "was encrypted with key" in msg and "siyu secrets rotate" in msg
        assert err.value.field == "email.password"
        # a damaged value (its authentication tag fails) is named as damaged, not silently used
        write_key_file(path, old_keys)
        stored = sealing.seal(other, "x")
        kid, token = stored.removeprefix(PREFIX).split(":", 1)
        with pytest.raises(SecretKeyError, match="damaged"):
            sealing.open_value(other, f"{PREFIX}{kid}:{token[:-6]}AAAAAA", "probe")
    finally:
        other.close()

    # a key file others can read is refused
    os.chmod(path, 0o644)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        sealing.box(ctx, reload=True)
    os.chmod(path, 0o600)

    # SIYU_SECRET_KEY mode: a passphrase other than the one that encrypted is an error too
    env_a = Settings(data_dir=tmp_path / "env", secret_key="passphrase-A-0123456789")
    a = Context.open(env_a)
    try:
        brands.create_brand(a, "acme", "Acme")
        brand_webhooks.set_webhook(a, "acme", "anomalies", "https://example.com/h", HOOK_SECRET)
    finally:
        a.close()
    assert not key_file(env_a).exists()  # no key file when the key comes from the environment
    b = Context.open(Settings(data_dir=tmp_path / "env", secret_key="passphrase-B-0123456789"))
    try:
        with pytest.raises(SecretKeyError, match="SIYU_SECRET_KEY"):
            brand_webhooks.get_webhook(b, "acme", "anomalies")
    finally:
        b.close()


def test_rotate_key_file_with_the_cli(acme: Context) -> None:
    ctx = acme
    configure(ctx)
    path = key_file(ctx.settings)
    before = raw_state(ctx.settings)
    old_key = read_key_file(path)
    env = {**os.environ, "SIYU_DATA_DIR": str(ctx.settings.data_dir)}
    env.pop("SIYU_SECRET_KEY", None)
    out = subprocess.run(
        [str(Path(sys.executable).parent / "siyu"), "secrets", "rotate"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "3 secret(s) re-encrypted" in out.stdout
    new_key = read_key_file(path)
    assert len(new_key) == 1 and new_key != old_key and stat.S_IMODE(path.stat().st_mode) == 0o600
    after = raw_state(ctx.settings)
    assert after != before and raw_state(ctx.settings).count(PREFIX) == 3
    for secret in PLAIN:
        assert secret not in after
    # this (already open) process notices the new key file and still reads everything
    assert messaging.providers.smtp_settings(ctx, "acme").password == SMTP_PASSWORD
    hook = brand_webhooks.get_webhook(ctx, "acme", "anomalies")
    assert hook is not None and hook.secret == HOOK_SECRET
    # the old key alone opens nothing any more
    write_key_file(path, old_key)
    with pytest.raises(SecretKeyError):
        messaging.providers.smtp_settings(ctx, "acme")


def test_rotate_to_an_environment_key(acme: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = acme
    configure(ctx)  # sealed with the key file
    old = sealing.box(ctx).primary_id
    env_settings = Settings(data_dir=ctx.settings.data_dir, secret_key="new-passphrase-0123456789")
    monkeypatch.setenv("SIYU_SECRET_KEY_PREVIOUS", "")
    c = Context.open(env_settings)
    try:
        r = sealing.rotate(c)
        assert r.rewritten == 3 and r.source == "SIYU_SECRET_KEY" and r.new_key != old
        key_file(env_settings).unlink()  # the file key is no longer needed
        assert messaging.providers.smtp_settings(c, "acme").password == SMTP_PASSWORD
        assert f"{PREFIX}{r.new_key}:" in raw_state(env_settings)
    finally:
        c.close()
    # then the next passphrase, with the old one named as previous
    monkeypatch.setenv("SIYU_SECRET_KEY_PREVIOUS", "new-passphrase-0123456789")
    c = Context.open(Settings(data_dir=ctx.settings.data_dir, secret_key="newer-passphrase-0123456789"))
    try:
        assert sealing.rotate(c).rewritten == 3
    finally:
        c.close()
    monkeypatch.setenv("SIYU_SECRET_KEY_PREVIOUS", "")
    c = Context.open(Settings(data_dir=ctx.settings.data_dir, secret_key="newer-passphrase-0123456789"))
    try:
        hook = brand_webhooks.get_webhook(c, "acme", "anomalies")
        assert hook is not None and hook.secret == HOOK_SECRET
    finally:
        c.close()


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SIYU_SECRET_KEY", raising=False)
    monkeypatch.delenv("SIYU_SECRET_KEY_PREVIOUS", raising=False)
    yield
