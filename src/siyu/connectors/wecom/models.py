"""Typed records of WeCom's customer-contact answers (built with ``from_api``; unknown fields ignored)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from siyu.connectors.wecom.errors import describe


@dataclass(frozen=True)
class ExternalContact:
    external_userid: str
    name: str = ""
    type: int = 1  # 1 WeChat, 2 WeCom
    gender: int = 0
    unionid: str = ""
    avatar: str = ""
    corp_name: str = ""

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> ExternalContact:
        return cls(
            str(d["external_userid"]),
            str(d.get("name", "")),
            int(d.get("type", 1)),
            int(d.get("gender", 0)),
            str(d.get("unionid", "")),
            str(d.get("avatar", "")),
            str(d.get("corp_name", "")),
        )


@dataclass(frozen=True)
class FollowInfo:
    """A member's side of a relation: when and how the customer was added, with which state and tags."""

    userid: str
    createtime: int
    add_way: int = 0
    state: str = ""
    remark: str = ""
    description: str = ""
    tag_ids: tuple[str, ...] = ()
    oper_userid: str = ""

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> FollowInfo:
        tags = d.get("tag_id") or [t.get("tag_id", "") for t in d.get("tags") or []]
        return cls(
            str(d["userid"]),
            int(d.get("createtime", 0)),
            int(d.get("add_way", 0)),
            str(d.get("state", "")),
            str(d.get("remark", "")),
            str(d.get("description", "")),
            tuple(str(t) for t in tags),
            str(d.get("oper_userid", "")),
        )


@dataclass(frozen=True)
class ContactRecord:
    """One (customer, member) pair of ``batch/get_by_user``."""

    contact: ExternalContact
    follow: FollowInfo


@dataclass(frozen=True)
class ContactDetail:
    """``get``: the customer and every member following them (all pages)."""

    contact: ExternalContact
    follow_users: list[FollowInfo]


@dataclass(frozen=True)
class Tag:
    id: str
    name: str
    order: int = 0


@dataclass(frozen=True)
class TagGroup:
    group_id: str
    name: str
    order: int = 0
    tags: list[Tag] = field(default_factory=list)

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> TagGroup:
        tags = [Tag(str(t["id"]), str(t["name"]), int(t.get("order", 0))) for t in d.get("tag") or []]
        return cls(str(d["group_id"]), str(d.get("group_name", "")), int(d.get("order", 0)), tags)


@dataclass(frozen=True)
class GroupMember:
    userid: str
    type: int  # 1 member, 2 external
    join_time: int = 0
    join_scene: int = 0
    unionid: str = ""


@dataclass(frozen=True)
class GroupChat:
    chat_id: str
    name: str
    owner: str
    create_time: int
    members: list[GroupMember]
    admins: tuple[str, ...] = ()  # admin_list: the group's admins (members), besides the owner

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> GroupChat:
        members = [
            GroupMember(
                str(m["userid"]),
                int(m.get("type", 1)),
                int(m.get("join_time", 0)),
                int(m.get("join_scene", 0)),
                str(m.get("unionid", "")),
            )
            for m in d.get("member_list") or []
        ]
        admins = tuple(str(a["userid"]) for a in d.get("admin_list") or [] if a.get("userid"))
        return cls(
            str(d["chat_id"]),
            str(d.get("name", "")),
            str(d.get("owner", "")),
            int(d.get("create_time", 0)),
            members,
            admins,
        )


@dataclass(frozen=True)
class TransferOutcome:
    """Per-customer answer of ``transfer_customer`` (errcode 0 = accepted, effective after 24 h)."""

    external_userid: str
    errcode: int

    @property
    def meaning(self) -> str:
        return "accepted" if self.errcode == 0 else describe(self.errcode)[0]


@dataclass(frozen=True)
class TransferStatus:
    """``transfer_result``: 1 done, 2 waiting, 3 refused by customer, 4 takeover over limit, 5 no record."""

    external_userid: str
    status: int
    takeover_time: int = 0


@dataclass(frozen=True)
class MsgTemplate:
    msgid: str
    fail_list: list[str]


@dataclass(frozen=True)
class ContactWay:
    config_id: str
    qr_code: str = ""
