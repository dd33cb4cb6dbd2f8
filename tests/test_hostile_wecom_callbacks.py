"""Fuzz the WeCom callback path (crypto + XML parsing) with hypothesis; XML bombs are refused with a logged reason."""

from __future__ import annotations

import contextlib
import logging
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.connectors.wecom.crypto import WeComCryptoError, WXBizMsgCrypt, extract_encrypt
from siyu.domain.models import Role
from siyu.domain.wecom_events import WeComEventError, parse_event, payload_digest
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.wecom import callbacks
from siyu.services.wecom.config import WeComConfig, set_config

TOKEN, KEY, CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wwlocal0000000001"
CRYPT = WXBizMsgCrypt(TOKEN, KEY, CORP)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + "]><xml><ToUserName>&j;</ToUserName><CreateTime>1700000000</CreateTime></xml>"
)
EXTERNAL = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    "<xml><ToUserName>&x;</ToUserName><CreateTime>1700000000</CreateTime></xml>"
)
QUADRATIC = '<!DOCTYPE xml [<!ENTITY a "' + "x" * 20_000 + '">]><xml><A>' + "&a;" * 2_000 + "</A></xml>"
BOMBS = [BILLION_LAUGHS, EXTERNAL, QUADRATIC, '<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/x.dtd"><xml/>']

EVENT_TAGS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Event", "ChangeType", "UserID"]
EVENT_TAGS += ["ExternalUserID", "ChatId", "UpdateDetail", "JoinScene", "MemChangeCnt", "Id", "TagType", "State"]


def xml_docs() -> st.SearchStrategy[str]:
    """Callback-shaped XML: known tags with arbitrary text (CDATA or escaped), sometimes nested or not <xml>."""
    text = st.text(max_size=40).map(lambda t: t.replace("]]>", ""))
    value = st.one_of(
        text.map(lambda t: f"<![CDATA[{t}]]>"),
        st.integers(min_value=-(10**20), max_value=10**20).map(str),
        st.sampled_from(["change_external_contact", "add_external_contact", "change_external_chat", "update"]),
        text.map(lambda t: t.replace("&", "&amp;").replace("<", "&lt;")),
    )
    elem = st.tuples(st.sampled_from(EVENT_TAGS), value).map(lambda kv: f"<{kv[0]}>{kv[1]}</{kv[0]}>")
    root = st.sampled_from(["xml", "xml", "root"])
    return st.tuples(root, st.lists(elem, max_size=12)).map(lambda r: f"<{r[0]}>{''.join(r[1])}</{r[0]}>")


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_crash_the_parsers(data: bytes) -> None:
    for step in (extract_encrypt, parse_event, payload_digest):
        with contextlib.suppress(WeComCryptoError, WeComEventError):
            step(data)


@FUZZ
@given(st.text(max_size=600))
def test_arbitrary_encrypt_values_are_refused_by_reason(encrypt: str) -> None:
    try:
        CRYPT.decrypt(encrypt)
    except WeComCryptoError as err:
        assert err.reason in {"encrypt", "padding", "length", "receiveid"}


@FUZZ
@given(xml_docs())
def test_callback_shaped_xml_parses_or_is_refused(doc: str) -> None:
    try:
        event = parse_event(doc)
    except WeComEventError as err:
        assert err.field
        return
    assert event.create_time > 0 and event.at.year >= 1970 and len(event.dedupe_key()) <= 400


@pytest.mark.parametrize("bomb", BOMBS, ids=["billion-laughs", "external-entity", "quadratic", "external-dtd"])
def test_xml_bombs_are_refused_quickly(bomb: str) -> None:
    started = time.perf_counter()
    for step in (parse_event, payload_digest):
        with pytest.raises(WeComEventError, match="DTD or an entity"):
            step(bomb)
    assert time.perf_counter() - started < 1.0


def test_signed_bomb_is_rejected_and_logged(ctx: Context, caplog: pytest.LogCaptureFixture) -> None:
    """Even correctly encrypted and signed (a leaked key), a bomb is refused, logged and nothing is stored."""
    brands.create_brand(ctx, "acme", "Acme")
    brands.create_user(ctx, "acme", "admin", "s3cret-pass", Role.ADMIN)
    set_config(ctx, "acme", WeComConfig(CORP, TOKEN, KEY, secret="contact-secret"))
    for i, bomb in enumerate(BOMBS):
        sealed = CRYPT.encrypt_msg(bomb, nonce=f"n{i}")
        args = (sealed.msg_signature, sealed.timestamp, sealed.nonce, sealed.xml().encode())
        with caplog.at_level(logging.WARNING, logger=callbacks.__name__), pytest.raises(callbacks.Rejected) as info:
            callbacks.receive(ctx, "acme", *args, enqueue=False)
        assert info.value.field == "malformed" and "DTD" in info.value.message
    logged = [r.getMessage() for r in caplog.records if "rejected (malformed)" in r.getMessage()]
    assert len(logged) == len(BOMBS) and all("DTD" in m for m in logged)
    from sqlalchemy import func, select

    from siyu.stores.state.wecom_models import WeComCallbackRow

    with ctx.sessions() as s:
        assert s.execute(select(func.count()).select_from(WeComCallbackRow)).scalar_one() == 0


def test_out_of_range_create_time_is_refused() -> None:
    for ts in ("99999999999999999999", "-5", "0", "٣", "--1"):
        with pytest.raises(WeComEventError):
            parse_event(f"<xml><CreateTime>{ts}</CreateTime><Event>x</Event></xml>")
