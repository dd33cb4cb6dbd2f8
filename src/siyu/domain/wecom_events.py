"""WeCom callback events as typed values: parse the decrypted XML of a callback (pure, no I/O).

Handles every change type of ``change_external_contact``, ``change_external_chat`` and ``change_external_tag``;
anything else parses to ``OtherEvent`` (stored, not applied).
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.parsers import expat

from siyu.errors import SiyuError

CONTACT_CHANGES = (
    "add_external_contact",
    "add_half_external_contact",
    "edit_external_contact",
    "del_external_contact",
    "del_follow_user",
    "transfer_fail",
)
CHAT_CHANGES = ("create", "update", "dismiss")
CHAT_UPDATES = ("add_member", "del_member", "change_owner", "change_name", "change_notice")
TAG_CHANGES = ("create", "update", "delete", "shuffle")
TRANSFER_FAIL_REASONS = ("customer_refused", "customer_limit_exceed")


@dataclass(frozen=True)
class WeComEvent:
    """Fields every callback carries."""

    corp_id: str  # ToUserName
    from_user: str  # FromUserName ("sys")
    create_time: int  # CreateTime (unix seconds)
    event: str
    change_type: str
    fields: dict[str, str] = field(default_factory=dict, compare=False, repr=False)  # every element, as text
    payload_sha: str = field(default="", compare=False, repr=False)  # of the whole decrypted XML (``payload_digest``)

    @property
    def at(self) -> datetime:
        """CreateTime as naive UTC (how the warehouse stores timestamps)."""
        return datetime.fromtimestamp(self.create_time, UTC).replace(tzinfo=None)

    def dedupe_key(self) -> str:
        """(FromUserName, CreateTime, ChangeType, UserID, ExternalUserID) + the chat/tag id and update detail (to
        read) + a digest of the whole decrypted payload: WeCom's retries carry the same payload and share the key,
        while two genuine changes in the same second (say two member changes of one chat) differ somewhere in it
        and are both applied. At most 400 characters (the digest is kept whole)."""
        f = self.fields
        parts = [
            self.from_user,
            str(self.create_time),
            self.event,
            self.change_type,
            f.get("UserID", ""),
            f.get("ExternalUserID", ""),
            f.get("ChatId", ""),
            f.get("Id", ""),
            f.get("UpdateDetail", ""),
        ]
        return f"{'|'.join(parts)[:383]}|{self.payload_sha[:16]}"


@dataclass(frozen=True)
class ContactAdded(WeComEvent):
    """add_external_contact / add_half_external_contact (``half``: the customer added the member unverified)."""

    user_id: str = ""
    external_user_id: str = ""
    state: str = ""
    welcome_code: str = ""
    half: bool = False


@dataclass(frozen=True)
class ContactEdited(WeComEvent):
    user_id: str = ""
    external_user_id: str = ""


@dataclass(frozen=True)
class ContactDeletedByMember(WeComEvent):
    """del_external_contact: the member deleted the customer (``source`` DELETE_BY_TRANSFER on inheritance)."""

    user_id: str = ""
    external_user_id: str = ""
    source: str = ""

    @property
    def by_transfer(self) -> bool:
        return self.source == "DELETE_BY_TRANSFER"


@dataclass(frozen=True)
class ContactDeletedByCustomer(WeComEvent):
    """del_follow_user: the customer deleted the member (删粉)."""

    user_id: str = ""
    external_user_id: str = ""


@dataclass(frozen=True)
class TransferFailed(WeComEvent):
    user_id: str = ""
    external_user_id: str = ""
    fail_reason: str = ""  # customer_refused | customer_limit_exceed


@dataclass(frozen=True)
class ChatChanged(WeComEvent):
    """change_external_chat: create | update (``update_detail``) | dismiss."""

    chat_id: str = ""
    update_detail: str = ""
    join_scene: int | None = None
    quit_scene: int | None = None
    mem_change_cnt: int | None = None


@dataclass(frozen=True)
class TagChanged(WeComEvent):
    """change_external_tag: create | update | delete | shuffle of a tag or tag group (``tag_type``)."""

    tag_id: str = ""
    tag_type: str = ""  # tag | tag_group


@dataclass(frozen=True)
class OtherEvent(WeComEvent):
    """A callback siyu does not act on (kept as received)."""


class WeComEventError(SiyuError):
    """The decrypted callback is not a well-formed WeCom event."""


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v not in (None, "") and str(v).strip().lstrip("-").isascii() else None
    except ValueError:
        return None


MAX_CREATE_TIME = 10**11  # CreateTime is unix seconds: anything past the year 5000 is not a real event


def _refuse_dtd(*_args: object) -> None:
    raise WeComEventError("callback XML declares a DTD or an entity (WeCom never does); refused", field="xml")


def parse_xml(xml: bytes | str) -> ET.Element:
    """Parse with expat, DTDs and entity declarations refused (no entity expansion, no external entities)."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd  # type: ignore[assignment]
    try:
        parser.Parse(xml, True)
        return builder.close()
    except (expat.ExpatError, AssertionError, IndexError) as err:  # TreeBuilder: no root / unbalanced
        raise WeComEventError(f"callback is not XML ({err or 'no root element'})", field="xml") from err


def xml_fields(xml: bytes | str) -> dict[str, str]:
    """The child elements of ``<xml>`` as text (CDATA unwrapped)."""
    root = parse_xml(xml)
    if root.tag != "xml":
        raise WeComEventError(f"callback root element is <{root.tag}>, expected <xml>", field="xml")
    return {child.tag: (child.text or "").strip() for child in root}


def payload_digest(xml: bytes | str) -> str:
    """SHA-256 (hex) of the decrypted XML in canonical form (C14N 2.0, blank text stripped: CDATA or not,
    whitespace between elements and attribute order do not change it; every element, nested ones too, does)."""
    text = xml.decode("utf-8", "replace") if isinstance(xml, bytes) else xml
    parse_xml(text)  # refuses DTDs / entities before canonicalising
    try:
        canonical = ET.canonicalize(text, strip_text=True)
    except ET.ParseError as err:
        raise WeComEventError(f"callback is not XML ({err})", field="xml") from err
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_event(xml: bytes | str) -> WeComEvent:
    """A typed event from the decrypted XML of a callback."""
    f = xml_fields(xml)
    create = _int(f.get("CreateTime"))
    if create is None or not 0 < create < MAX_CREATE_TIME:
        raise WeComEventError("callback has no numeric CreateTime (unix seconds)", field="CreateTime")
    base: dict[str, Any] = {
        "corp_id": f.get("ToUserName", ""),
        "from_user": f.get("FromUserName", ""),
        "create_time": create,
        "event": f.get("Event", ""),
        "change_type": f.get("ChangeType", ""),
        "fields": f,
        "payload_sha": payload_digest(xml),
    }
    ev, ct = base["event"], base["change_type"]
    if ev == "change_external_contact" and ct in CONTACT_CHANGES:
        who: dict[str, Any] = {"user_id": f.get("UserID", ""), "external_user_id": f.get("ExternalUserID", "")}
        if not who["user_id"] or not who["external_user_id"]:
            raise WeComEventError(f"{ct} callback lacks UserID or ExternalUserID", field="UserID")
        if ct in ("add_external_contact", "add_half_external_contact"):
            return ContactAdded(
                **base,
                **who,
                state=f.get("State", ""),
                welcome_code=f.get("WelcomeCode", ""),
                half=ct == "add_half_external_contact",
            )
        if ct == "edit_external_contact":
            return ContactEdited(**base, **who)
        if ct == "del_external_contact":
            return ContactDeletedByMember(**base, **who, source=f.get("Source", ""))
        if ct == "del_follow_user":
            return ContactDeletedByCustomer(**base, **who)
        return TransferFailed(**base, **who, fail_reason=f.get("FailReason", ""))
    if ev == "change_external_chat" and ct in CHAT_CHANGES:
        if not f.get("ChatId"):
            raise WeComEventError("change_external_chat callback lacks ChatId", field="ChatId")
        return ChatChanged(
            **base,
            chat_id=f["ChatId"],
            update_detail=f.get("UpdateDetail", ""),
            join_scene=_int(f.get("JoinScene")),
            quit_scene=_int(f.get("QuitScene")),
            mem_change_cnt=_int(f.get("MemChangeCnt")),
        )
    if ev == "change_external_tag" and ct in TAG_CHANGES:
        return TagChanged(**base, tag_id=f.get("Id", ""), tag_type=f.get("TagType", ""))
    return OtherEvent(**base)
