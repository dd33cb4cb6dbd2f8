"""Every change type of wecom.md parses to its typed event; malformed XML is refused with the field named."""

from __future__ import annotations

import pytest

from siyu.domain import wecom_events as ev
from tests.wecom_server.callbacks import event_xml

BASE = {"ToUserName": "wwcorp", "FromUserName": "sys", "CreateTime": 1700000000, "MsgType": "event"}


def contact(change: str, **extra: str) -> ev.WeComEvent:
    return ev.parse_event(
        event_xml(
            {
                **BASE,
                "Event": "change_external_contact",
                "ChangeType": change,
                "UserID": "zhangsan",
                "ExternalUserID": "wmABC",
                **extra,
            }
        )
    )


def test_contact_changes() -> None:
    add = contact("add_external_contact", State="ch_store", WelcomeCode="WC1")
    assert isinstance(add, ev.ContactAdded) and (add.state, add.welcome_code, add.half) == ("ch_store", "WC1", False)
    half = contact("add_half_external_contact", State="s")
    assert isinstance(half, ev.ContactAdded) and half.half and half.welcome_code == ""
    assert isinstance(contact("edit_external_contact"), ev.ContactEdited)
    by_member = contact("del_external_contact", Source="DELETE_BY_TRANSFER")
    assert isinstance(by_member, ev.ContactDeletedByMember) and by_member.by_transfer
    assert not contact("del_external_contact").by_transfer  # type: ignore[attr-defined]
    lost = contact("del_follow_user")
    assert isinstance(lost, ev.ContactDeletedByCustomer) and lost.at.isoformat() == "2023-11-14T22:13:20"
    fail = contact("transfer_fail", FailReason="customer_refused")
    assert isinstance(fail, ev.TransferFailed) and fail.fail_reason == "customer_refused"
    assert all(isinstance(contact(c), ev.WeComEvent) for c in ev.CONTACT_CHANGES)


def test_chat_and_tag_changes() -> None:
    for change in ev.CHAT_CHANGES:
        chat = ev.parse_event(
            event_xml({**BASE, "Event": "change_external_chat", "ChatId": "wr1", "ChangeType": change})
        )
        assert isinstance(chat, ev.ChatChanged) and chat.change_type == change
    for detail in ev.CHAT_UPDATES:
        upd = ev.parse_event(
            event_xml(
                {
                    **BASE,
                    "Event": "change_external_chat",
                    "ChatId": "wr1",
                    "ChangeType": "update",
                    "UpdateDetail": detail,
                    "JoinScene": 1,
                    "QuitScene": 0,
                    "MemChangeCnt": 3,
                }
            )
        )
        assert isinstance(upd, ev.ChatChanged) and upd.update_detail == detail and upd.mem_change_cnt == 3
    for change in ev.TAG_CHANGES:
        tag = ev.parse_event(
            event_xml(
                {**BASE, "Event": "change_external_tag", "Id": "et1", "TagType": "tag_group", "ChangeType": change}
            )
        )
        assert isinstance(tag, ev.TagChanged) and (tag.tag_id, tag.tag_type) == ("et1", "tag_group")


def test_other_and_dedupe_key() -> None:
    other = ev.parse_event(event_xml({**BASE, "Event": "enter_agent", "ChangeType": ""}))
    assert type(other) is ev.OtherEvent
    a = contact("del_follow_user")
    assert a.dedupe_key() == contact("del_follow_user").dedupe_key()
    assert a.dedupe_key() != contact("del_external_contact").dedupe_key()


def test_dedupe_key_is_the_payload() -> None:
    """WeCom's retry carries the same payload (however it is laid out) and shares the key; two genuine changes in
    the same second differ somewhere in the payload — a field the readable part of the key does not name — and
    get distinct keys."""
    chat = {**BASE, "Event": "change_external_chat", "ChatId": "wrChat", "ChangeType": "update"}
    one = {**chat, "UpdateDetail": "add_member", "JoinScene": 1, "MemChangeCnt": 1}
    xml = event_xml(one)
    retry = xml.replace("><", ">\n  <").replace("<![CDATA[add_member]]>", "add_member")  # same content
    assert ev.parse_event(xml).dedupe_key() == ev.parse_event(retry).dedupe_key()
    other = event_xml({**one, "JoinScene": 3, "MemChangeCnt": 2})  # another member joined, by QR code
    assert ev.parse_event(xml).dedupe_key() != ev.parse_event(other).dedupe_key()
    nested = event_xml(one).replace("</xml>", "<MemChangeList><Item>wmA</Item></MemChangeList></xml>")
    nested_b = nested.replace("wmA", "wmB")
    assert ev.parse_event(nested).dedupe_key() != ev.parse_event(nested_b).dedupe_key()  # nested elements count
    long = contact("edit_external_contact", ExternalUserID="wm" + "x" * 500)
    key = long.dedupe_key()
    assert len(key) == 400 and key.endswith("|" + long.payload_sha[:16])  # the digest survives the length limit


@pytest.mark.parametrize(
    ("xml", "field"),
    [
        ("not xml", "xml"),
        ("<root/>", "xml"),
        ("<xml><Event>change_external_contact</Event></xml>", "CreateTime"),
        (
            "<xml><CreateTime>1</CreateTime><Event>change_external_contact</Event><ChangeType>del_follow_user</ChangeType>"
            "</xml>",
            "UserID",
        ),
        (
            "<xml><CreateTime>1</CreateTime><Event>change_external_chat</Event><ChangeType>create</ChangeType></xml>",
            "ChatId",
        ),
    ],
)
def test_malformed(xml: str, field: str) -> None:
    with pytest.raises(ev.WeComEventError) as err:
        ev.parse_event(xml)
    assert err.value.field == field
