"""Typed WeCom customer-contact client: one method per endpoint of docs/wecom.md, paging helpers that follow cursors.

Every call goes through ``Transport`` (token cache, retries on -1, one refresh on 40014/42001, rate limiting,
back-off on 45009/45033); failures raise ``WeComError`` with the errcode, its meaning and what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from siyu.connectors.wecom.models import (
    ContactDetail,
    ContactRecord,
    ContactWay,
    ExternalContact,
    FollowInfo,
    GroupChat,
    MsgTemplate,
    TagGroup,
    TransferOutcome,
    TransferStatus,
)
from siyu.connectors.wecom.transport import Transport

BATCH_USERS = 100  # batch/get_by_user: ≤ 100 userids per call
BATCH_LIMIT = 100  # and ≤ 100 records per page
TRANSFER_CHUNK = 100


def _chunks(items: list[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class WeComClient:
    """The customer-contact API of one WeCom app (``Transport(corpid, secret, base_url)``)."""

    def __init__(self, transport: Transport) -> None:
        self.t = transport

    def close(self) -> None:
        self.t.close()

    # -- members and contacts --------------------------------------------------------------------------------
    def get_follow_user_list(self) -> list[str]:
        """Members with the customer-contact permission."""
        return [str(u) for u in self.t.call("get_follow_user_list", query={})["follow_user"]]

    def list_contacts(self, userid: str) -> list[str]:
        """External userids a member follows."""
        return [str(e) for e in self.t.call("list", query={"userid": userid}).get("external_userid", [])]

    def get_contact(self, external_userid: str) -> ContactDetail:
        """A customer and all members following them (follows ``next_cursor`` past 500 followers)."""
        follows: list[FollowInfo] = []
        cursor = ""
        while True:
            out = self.t.call("get", query={"external_userid": external_userid, "cursor": cursor})
            follows += [FollowInfo.from_api(f) for f in out.get("follow_user") or []]
            cursor = str(out.get("next_cursor") or "")
            if not cursor:
                return ContactDetail(ExternalContact.from_api(out["external_contact"]), follows)

    def batch_get_by_user(
        self, userids: list[str], cursor: str = "", limit: int = BATCH_LIMIT
    ) -> tuple[list[ContactRecord], str]:
        """One page of ``batch/get_by_user`` (≤ 100 userids, limit ≤ 100); returns (records, next_cursor)."""
        if not 1 <= len(userids) <= BATCH_USERS or not 1 <= limit <= BATCH_LIMIT:
            raise ValueError("batch_get_by_user takes 1..100 userids and limit 1..100")
        out = self.t.call("batch/get_by_user", {"userid_list": userids, "cursor": cursor, "limit": limit})
        rows = [
            ContactRecord(ExternalContact.from_api(r["external_contact"]), FollowInfo.from_api(r["follow_info"]))
            for r in out.get("external_contact_list") or []
        ]
        return rows, str(out.get("next_cursor") or "")

    def iter_contacts(self, userids: Iterable[str], limit: int = BATCH_LIMIT) -> Iterator[ContactRecord]:
        """Every (customer, member) record of these members: 100 members per batch, every page of each."""
        for chunk in _chunks(sorted(set(userids)), BATCH_USERS):
            cursor = ""
            while True:
                rows, cursor = self.batch_get_by_user(chunk, cursor, limit)
                yield from rows
                if not cursor:
                    break

    def iter_contacts_parallel(
        self, userids: Iterable[str], workers: int = 4, users_per_batch: int = 10, limit: int = BATCH_LIMIT
    ) -> Iterator[ContactRecord]:
        """``iter_contacts`` with ``workers`` member batches paged at once (to use WeCom's rate, not its latency);
        records come batch by batch, in completion order."""
        from concurrent.futures import ThreadPoolExecutor

        chunks = list(_chunks(sorted(set(userids)), max(1, min(users_per_batch, BATCH_USERS))))
        if workers <= 1 or len(chunks) <= 1:
            yield from self.iter_contacts(userids, limit)
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wecom-sync") as pool:
            for rows in pool.map(lambda chunk: list(self.iter_contacts(chunk, limit)), chunks):
                yield from rows

    def mark_tag(self, userid: str, external_userid: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
        body = {"userid": userid, "external_userid": external_userid, "add_tag": list(add), "remove_tag": list(remove)}
        self.t.call("mark_tag", body)

    # -- contact ways (联系我 / 渠道活码) and group join ways ---------------------------------------------------------
    def add_contact_way(
        self,
        users: list[str],
        state: str = "",
        remark: str = "",
        *,
        scene: int = 2,
        skip_verify: bool = True,
        **extra: Any,
    ) -> ContactWay:
        """A 联系我 code for one member (type 1) or several (type 2); ``state`` ≤ 30 chars attributes adds."""
        body = {
            "type": 1 if len(users) == 1 else 2,
            "scene": scene,
            "user": users,
            "state": state,
            "remark": remark,
            "skip_verify": skip_verify,
            **extra,
        }
        out = self.t.call("add_contact_way", body)
        return ContactWay(str(out["config_id"]), str(out.get("qr_code", "")))

    def get_contact_way(self, config_id: str) -> dict[str, Any]:
        return dict(self.t.call("get_contact_way", {"config_id": config_id})["contact_way"])

    def update_contact_way(self, config_id: str, **fields: Any) -> None:
        self.t.call("update_contact_way", {"config_id": config_id, **fields})

    def del_contact_way(self, config_id: str) -> None:
        self.t.call("del_contact_way", {"config_id": config_id})

    def iter_contact_ways(self, start_time: int = 0, end_time: int = 0, limit: int = 1000) -> Iterator[str]:
        """config_ids of API-made codes (every page)."""
        cursor = ""
        while True:
            body: dict[str, Any] = {"cursor": cursor, "limit": limit}
            if start_time:
                body |= {"start_time": start_time, "end_time": end_time}
            out = self.t.call("list_contact_way", body)
            yield from (str(w["config_id"]) for w in out.get("contact_way") or [])
            cursor = str(out.get("next_cursor") or "")
            if not cursor:
                return

    def add_join_way(self, chat_ids: list[str], state: str = "", scene: int = 2, **extra: Any) -> str:
        """A group join code over ≤ 5 chats; returns its config_id."""
        body = {"scene": scene, "chat_id_list": chat_ids, "state": state, **extra}
        return str(self.t.call("groupchat/add_join_way", body)["config_id"])

    def get_join_way(self, config_id: str) -> dict[str, Any]:
        """A group join code's settings, with its ``qr_code`` URL."""
        return dict(self.t.call("groupchat/get_join_way", {"config_id": config_id})["join_way"])

    # -- corp tags ---------------------------------------------------------------------------------------------
    def get_corp_tags(self, tag_ids: Sequence[str] = (), group_ids: Sequence[str] = ()) -> list[TagGroup]:
        out = self.t.call("get_corp_tag_list", {"tag_id": list(tag_ids), "group_id": list(group_ids)})
        return [TagGroup.from_api(g) for g in out.get("tag_group") or []]

    def add_corp_tags(self, names: list[str], group_name: str = "", group_id: str = "", order: int = 0) -> TagGroup:
        body: dict[str, Any] = {"tag": [{"name": n} for n in names], "order": order}
        body |= {"group_id": group_id} if group_id else {"group_name": group_name}
        return TagGroup.from_api(self.t.call("add_corp_tag", body)["tag_group"])

    def edit_corp_tag(self, tag_or_group_id: str, name: str = "", order: int | None = None) -> None:
        body: dict[str, Any] = {"id": tag_or_group_id, **({"name": name} if name else {})}
        if order is not None:
            body["order"] = order
        self.t.call("edit_corp_tag", body)

    def del_corp_tags(self, tag_ids: Sequence[str] = (), group_ids: Sequence[str] = ()) -> None:
        self.t.call("del_corp_tag", {"tag_id": list(tag_ids), "group_id": list(group_ids)})

    # -- messages ----------------------------------------------------------------------------------------------
    def send_welcome_msg(
        self, welcome_code: str, content: str = "", attachments: Sequence[dict[str, Any]] = ()
    ) -> None:
        """Send the welcome message of an add event (within 20 s, once: 41051 is final)."""
        body: dict[str, Any] = {"welcome_code": welcome_code, "attachments": list(attachments)}
        if content:
            body["text"] = {"content": content}
        self.t.call("send_welcome_msg", body)

    def add_msg_template(
        self,
        sender: str,
        external_userids: Sequence[str] = (),
        content: str = "",
        attachments: Sequence[dict[str, Any]] = (),
        chat_ids: Sequence[str] = (),
    ) -> MsgTemplate:
        """A 群发 task for one member: customers (≤ 10,000) or, with ``chat_ids``, groups (≤ 2,000)."""
        body: dict[str, Any] = {
            "chat_type": "group" if chat_ids else "single",
            "sender": sender,
            "attachments": list(attachments),
        }
        body |= {"chat_id_list": list(chat_ids)} if chat_ids else {"external_userid": list(external_userids)}
        if content:
            body["text"] = {"content": content}
        out = self.t.call("add_msg_template", body)
        return MsgTemplate(str(out.get("msgid", "")), [str(x) for x in out.get("fail_list") or []])

    def _paged(self, api: str, body: dict[str, Any], key: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor = ""
        while True:
            out = self.t.call(api, {**body, "limit": 1000, "cursor": cursor})
            rows += list(out.get(key) or [])
            cursor = str(out.get("next_cursor") or "")
            if not cursor:
                return rows

    def get_groupmsg_task(self, msgid: str) -> list[dict[str, Any]]:
        """Members of a 群发 task: ``userid``, ``status`` (0 not sent yet, 2 sent = confirmed), ``send_time``."""
        return self._paged("get_groupmsg_task", {"msgid": msgid}, "task_list")

    def get_groupmsg_send_result(self, msgid: str, userid: str) -> list[dict[str, Any]]:
        """Per target of one member: ``external_userid``/``chat_id``, ``status`` (0 not sent, 1 sent, 2 not a
        contact, 3 already received a mass message), ``send_time``."""
        return self._paged("get_groupmsg_send_result", {"msgid": msgid, "userid": userid}, "send_list")

    # -- groups ------------------------------------------------------------------------------------------------
    def iter_group_chats(self, owners: Sequence[str] = (), status: int = 0, limit: int = 1000) -> Iterator[str]:
        """chat_ids of customer groups (owners in chunks of 100, every page)."""
        for chunk in _chunks(list(owners), 100) if owners else [[]]:
            cursor = ""
            while True:
                body: dict[str, Any] = {"status_filter": status, "limit": limit, "cursor": cursor}
                if chunk:
                    body["owner_filter"] = {"userid_list": chunk}
                out = self.t.call("groupchat/list", body)
                yield from (str(g["chat_id"]) for g in out.get("group_chat_list") or [])
                cursor = str(out.get("next_cursor") or "")
                if not cursor:
                    break

    def get_group_chat(self, chat_id: str) -> GroupChat:
        return GroupChat.from_api(self.t.call("groupchat/get", {"chat_id": chat_id, "need_name": 1})["group_chat"])

    # -- inheritance (在职/离职继承) ----------------------------------------------------------------------------
    def transfer_customers(
        self, handover: str, takeover: str, external_userids: list[str], resigned: bool = False
    ) -> list[TransferOutcome]:
        """Move customers (chunks of 100); per-customer errcode (40128 too often, 40129 pending, 84061 ...)."""
        api = "resigned/transfer_customer" if resigned else "transfer_customer"
        out: list[TransferOutcome] = []
        for chunk in _chunks(list(external_userids), TRANSFER_CHUNK):
            body = {"handover_userid": handover, "takeover_userid": takeover, "external_userid": chunk}
            out += [
                TransferOutcome(str(c["external_userid"]), int(c.get("errcode", 0)))
                for c in self.t.call(api, body).get("customer") or []
            ]
        return out

    def transfer_result(self, handover: str, takeover: str) -> list[TransferStatus]:
        rows: list[TransferStatus] = []
        cursor = ""
        while True:
            out = self.t.call(
                "transfer_result", {"handover_userid": handover, "takeover_userid": takeover, "cursor": cursor}
            )
            rows += [
                TransferStatus(str(c["external_userid"]), int(c.get("status", 0)), int(c.get("takeover_time", 0)))
                for c in out.get("customer") or []
            ]
            cursor = str(out.get("next_cursor") or "")
            if not cursor:
                return rows

    # -- customer Moments (客户朋友圈) ----------------------------------------------------------------------------
    def add_moment_task(
        self,
        content: str = "",
        attachments: Sequence[dict[str, Any]] = (),
        user_list: Sequence[str] = (),
        tag_list: Sequence[str] = (),
        department_list: Sequence[int] = (),
    ) -> str:
        """Create a Moments 发表任务 for the members (``user_list``; none = the app's whole visible range), visible
        to the customers with ``tag_list`` corp tags (none = all their customers); returns the async ``jobid``."""
        body: dict[str, Any] = {"attachments": list(attachments)}
        if content:
            body["text"] = {"content": content}
        sender: dict[str, Any] = {}
        if user_list:
            sender["user_list"] = list(user_list)
        if department_list:
            sender["department_list"] = list(department_list)
        visible: dict[str, Any] = {}
        if sender:
            visible["sender_list"] = sender
        if tag_list:
            visible["external_contact_list"] = {"tag_list": list(tag_list)}
        if visible:
            body["visible_range"] = visible
        return str(self.t.call("add_moment_task", body)["jobid"])

    def get_moment_task_result(self, jobid: str) -> dict[str, Any]:
        """The async result of ``add_moment_task``: ``status`` 1 started, 2 creating, 3 done; when done, ``result``
        holds errcode, ``moment_id``, ``invalid_sender_list`` and ``invalid_external_contact_list``."""
        out = self.t.call("get_moment_task_result", query={"jobid": jobid})
        return {"status": int(out.get("status", 0)), "type": out.get("type", ""), "result": out.get("result") or {}}

    def get_moment_list(
        self, start_time: int, end_time: int, creator: str = "", filter_type: int = 0, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Moments created in [start_time, end_time] (≤ 30 days apart; ``filter_type`` 0 company, 1 personal,
        2 all), every page of ``limit`` ≤ 20."""
        rows: list[dict[str, Any]] = []
        cursor = ""
        while True:
            body: dict[str, Any] = {
                "start_time": start_time,
                "end_time": end_time,
                "filter_type": filter_type,
                "cursor": cursor,
                "limit": limit,
            }
            if creator:
                body["creator"] = creator
            out = self.t.call("get_moment_list", body)
            rows += list(out.get("moment_list") or [])
            cursor = str(out.get("next_cursor") or "")
            if not cursor:
                return rows

    def get_moment_task(self, moment_id: str) -> list[dict[str, Any]]:
        """Members of a company Moments task: ``userid`` and ``publish_status`` (0 not posted, 1 posted)."""
        return self._paged("get_moment_task", {"moment_id": moment_id}, "task_list")

    # -- 联系客户统计 -----------------------------------------------------------------------------------------
    def get_user_behavior_data(
        self, userids: Sequence[str], start_time: int, end_time: int, partyids: Sequence[int] = ()
    ) -> list[dict[str, Any]]:
        """``get_user_behavior_data``: one row per day of [start_time, end_time] (Unix times, floored by WeCom to
        0:00; ≤ 30 days, none older than 180): ``stat_time``, ``chat_cnt``, ``message_cnt``, ``reply_percentage``
        and ``avg_reply_time`` (minutes; only when there were chats / replies), ``negative_feedback_cnt``,
        ``new_apply_cnt``, ``new_contact_cnt``. Several userids answer their TOTAL: ask per member."""
        if not userids and not partyids:
            raise ValueError("get_user_behavior_data needs userids or partyids")
        if len(userids) > BATCH_USERS or len(partyids) > BATCH_USERS:
            raise ValueError("get_user_behavior_data takes at most 100 userids and 100 partyids")
        body: dict[str, Any] = {"start_time": int(start_time), "end_time": int(end_time)}
        if userids:
            body["userid"] = list(userids)
        if partyids:
            body["partyid"] = [int(p) for p in partyids]
        return list(self.t.call("get_user_behavior_data", body).get("behavior_data") or [])
