"""Email over SMTP against a local aiosmtpd server: multipart text + HTML, a Chinese subject, STARTTLS + login,
and the SMTP answers classified (4xx retry later, 5xx final, bad login final)."""

from __future__ import annotations

import datetime as dt
import email
import ssl
from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from siyu.connectors.email import SmtpSettings, send_email
from tests.support.postgres import free_port


class Inbox:
    """Stores what the server accepted; answers 451/550 for chosen recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("busy@"):
            return "451 4.3.0 mailbox busy, try again later"
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"crm", b"s3cret")
    return AuthResult(success=ok, handled=False)


def _tls_context(tmp: Path) -> ssl.SSLContext:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return ctx


@pytest.fixture
def plain_smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    c = Controller(inbox, hostname="127.0.0.1", port=port)
    c.start()
    yield inbox, port
    c.stop()


def _settings(port: int, **kw: Any) -> SmtpSettings:
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_address": "crm@brand.cn",
        "from_name": "思域品牌",
        "timeout": 5,
    }
    return SmtpSettings(**{**base, **kw})


def test_multipart_utf8_message_is_delivered(plain_smtp: tuple[Inbox, int]) -> None:
    inbox, port = plain_smtp
    r = send_email(
        _settings(port),
        "Zhang.San@Example.com",
        "您的会员积分即将到期",
        "您好，张三：积分 1,200 将于月底到期。",
        "<p>您好，<b>张三</b>：积分 1,200 将于月底到期。</p>",
    )
    assert r.ok and r.code == "250" and r.message_id and r.message_id.endswith("@brand.cn>")
    mail_from, rcpts, raw = inbox.messages[0]
    assert mail_from == "crm@brand.cn" and rcpts == ["Zhang.San@Example.com"]
    msg = email.message_from_bytes(raw)
    assert str(make_header(decode_header(msg["Subject"]))) == "您的会员积分即将到期"
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n")[0].lower()  # RFC 2047 encoded header, not raw UTF-8
    assert str(make_header(decode_header(msg["From"]))) == "思域品牌 <crm@brand.cn>"
    assert msg["Message-ID"] == r.message_id
    assert msg.get_content_type() == "multipart/alternative"
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode(p.get_content_charset())
        for p in msg.walk()
        if not p.is_multipart()
    }
    assert parts["text/plain"].strip() == "您好，张三：积分 1,200 将于月底到期。"
    assert "<b>张三</b>" in parts["text/html"]
    text_only = send_email(_settings(port), "a@b.cn", "通知", "仅文本")
    assert text_only.ok and email.message_from_bytes(inbox.messages[1][2]).get_content_type() == "text/plain"


def test_smtp_answers_are_classified(plain_smtp: tuple[Inbox, int]) -> None:
    _inbox, port = plain_smtp
    busy = send_email(_settings(port), "busy@brand.cn", "主题", "正文")
    assert not busy.ok and busy.code == "451" and busy.retryable and "mailbox busy" in busy.meaning
    gone = send_email(_settings(port), "nobody@brand.cn", "主题", "正文")
    assert not gone.ok and gone.code == "550" and not gone.retryable
    down = send_email(_settings(free_port()), "a@b.cn", "主题", "正文")
    assert not down.ok and down.code == "connect" and down.retryable
    no_tls = send_email(_settings(port, security="starttls"), "a@b.cn", "主题", "正文")
    assert not no_tls.ok and no_tls.code == "starttls" and not no_tls.retryable


def test_starttls_and_login(tmp_path: Path) -> None:
    inbox = Inbox()
    port = free_port()
    c = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=_tls_context(tmp_path),
        require_starttls=True,
        authenticator=_authenticator,
        auth_require_tls=True,
        auth_exclude_mechanism=["LOGIN"],
    )
    c.start()
    try:
        s = _settings(port, security="starttls", username="crm", password="s3cret", verify_tls=False)
        r = send_email(s, "li@brand.cn", "欢迎加入会员", "欢迎！")
        assert r.ok and len(inbox.messages) == 1
        bad = send_email(
            _settings(port, security="starttls", username="crm", password="nope", verify_tls=False),
            "li@brand.cn",
            "欢迎加入会员",
            "欢迎！",
        )
        assert not bad.ok and bad.code == "535" and not bad.retryable and "login failed" in bad.meaning
        # the server requires STARTTLS: a plain session is refused
        plain = send_email(_settings(port), "li@brand.cn", "主题", "正文")
        assert not plain.ok and len(inbox.messages) == 1
        # and the certificate is checked unless told otherwise
        strict = send_email(
            _settings(port, security="starttls", username="crm", password="s3cret"), "li@brand.cn", "主题", "正文"
        )
        assert not strict.ok and len(inbox.messages) == 1
    finally:
        c.stop()
