"""Email over SMTP (stdlib ``smtplib``): multipart text + HTML, UTF-8 subjects and names, optional STARTTLS/SSL.

``send_email`` returns an ``EmailResult`` like the SMS providers do: the Message-ID on success, else the SMTP
code, its meaning and whether trying again later may help (4xx and connection errors: yes; 5xx: no).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

SECURITY = ("none", "starttls", "ssl")


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send: host, port, security (none / starttls / ssl), login, the From address."""

    host: str
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password: str = ""
    from_address: str = ""
    from_name: str = ""
    timeout: float = 15.0
    verify_tls: bool = True


@dataclass(frozen=True)
class EmailResult:
    ok: bool
    message_id: str | None = None
    code: str | None = None
    meaning: str = ""
    retryable: bool = False
    retry_after: float | None = None
    outcome_unknown: bool = False
    attempts: int = 1


def build_message(settings: SmtpSettings, to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    """The MIME message: ``text/plain`` (and ``text/html`` as a multipart/alternative), UTF-8 headers."""
    msg = EmailMessage()
    domain = settings.from_address.rpartition("@")[2] or "siyu.local"
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["From"] = (
        formataddr((settings.from_name, settings.from_address)) if settings.from_name else settings.from_address
    )
    msg["To"] = str(Address(addr_spec=to))
    msg["Subject"] = subject
    msg.set_content(text, charset="utf-8")
    if html:
        msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg


def _smtp_result(code: int, text: str) -> EmailResult:
    if 400 <= code < 500:
        return EmailResult(
            False, code=str(code), meaning=f"temporary SMTP failure {code}: {text}", retryable=True, retry_after=60.0
        )
    return EmailResult(False, code=str(code), meaning=f"SMTP refused {code}: {text}; check the address and settings")


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def send_email(settings: SmtpSettings, to: str, subject: str, text: str, html: str | None = None) -> EmailResult:
    """Send one message; connection problems before DATA are retryable, a lost answer after DATA is not."""
    if settings.security not in SECURITY:
        return EmailResult(False, code="config", meaning=f"security must be one of {', '.join(SECURITY)}")
    msg = build_message(settings, to, subject, text, html)
    context = ssl.create_default_context()
    if not settings.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    sent_data = False
    try:
        smtp: smtplib.SMTP
        if settings.security == "ssl":
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with smtp:
            smtp.ehlo()
            if settings.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, settings.password)
            sent_data = True
            refused = smtp.send_message(msg)
        if refused:
            rcode, rtext = next(iter(refused.values()))
            return _smtp_result(rcode, _text(rtext))
        return EmailResult(True, message_id=str(msg["Message-ID"]), code="250", meaning="accepted")
    except smtplib.SMTPAuthenticationError as exc:
        return EmailResult(False, code=str(exc.smtp_code), meaning="SMTP login failed: check username and password")
    except smtplib.SMTPRecipientsRefused as exc:
        rcode, rtext = next(iter(exc.recipients.values()))
        return _smtp_result(rcode, _text(rtext))
    except smtplib.SMTPResponseException as exc:
        return _smtp_result(exc.smtp_code, _text(exc.smtp_error))
    except smtplib.SMTPNotSupportedError as exc:
        return EmailResult(False, code="starttls", meaning=f"the server does not offer STARTTLS: {exc}")
    except TimeoutError as exc:
        if sent_data:
            return EmailResult(
                False,
                code="timeout",
                meaning=f"no answer after sending: it may be delivered ({exc})",
                outcome_unknown=True,
            )
        return EmailResult(False, code="timeout", meaning=f"SMTP timeout: {exc}", retryable=True, retry_after=30.0)
    except (OSError, smtplib.SMTPException) as exc:
        if sent_data and isinstance(exc, smtplib.SMTPServerDisconnected):
            return EmailResult(
                False, code="disconnected", meaning=f"connection lost while sending: {exc}", outcome_unknown=True
            )
        return EmailResult(
            False, code="connect", meaning=f"cannot reach the SMTP server: {exc}", retryable=True, retry_after=30.0
        )
