"""The local WeCom server's in-memory company: members, external contacts, relations, tags, groups, codes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Contact:
    """An external contact (a customer's WeChat account as the company sees it)."""

    external_userid: str
    name: str
    unionid: str = ""
    type: int = 1
    gender: int = 0
    avatar: str = ""
    corp_name: str = ""

    def api(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "external_userid": self.external_userid,
            "name": self.name,
            "type": self.type,
            "avatar": self.avatar,
            "gender": self.gender,
        }
        if self.unionid:
            d["unionid"] = self.unionid
        if self.type == 2:
            d["corp_name"] = self.corp_name
        return d


@dataclass
class Relation:
    """A member (guide) following an external contact."""

    userid: str
    external_userid: str
    createtime: int
    add_way: int = 1
    state: str = ""
    remark: str = ""
    description: str = ""
    tag_ids: list[str] = field(default_factory=list)
    oper_userid: str = ""


@dataclass
class Transfer:
    handover: str
    takeover: str
    external_userid: str
    at: float
    status: int = 2  # 1 done, 2 waiting, 3 refused, 4 takeover over limit


class Relations(dict[tuple[str, str], Relation]):
    """(userid, external_userid) → Relation, with a version bumped on every change (for the indexes)."""

    version = 0

    def __setitem__(self, key: tuple[str, str], value: Relation) -> None:
        self.version += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: tuple[str, str]) -> None:
        self.version += 1
        super().__delitem__(key)

    def pop(self, key: tuple[str, str], *default: Any) -> Any:  # type: ignore[override]
        self.version += 1
        return super().pop(key, *default)

    def setdefault(self, key: tuple[str, str], default: Relation) -> Relation:  # type: ignore[override]
        if key not in self:
            self[key] = default
        return self[key]


@dataclass
class Company:
    """Everything the server knows, keyed as WeCom keys it."""

    corpid: str
    members: dict[str, str] = field(default_factory=dict)  # userid -> name (all have customer-contact rights)
    contacts: dict[str, Contact] = field(default_factory=dict)
    relations: Relations = field(default_factory=Relations)  # (userid, external_userid)
    tag_groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # group_id -> {name, order, create_time}
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)  # tag_id -> {group_id, name, order, create_time}
    contact_ways: dict[str, dict[str, Any]] = field(default_factory=dict)
    join_ways: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # chat_id -> group_chat
    welcome_codes: dict[str, dict[str, Any]] = field(default_factory=dict)  # code -> {at, used, userid, ext}
    welcome_sent: list[dict[str, Any]] = field(default_factory=list)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfers: list[Transfer] = field(default_factory=list)
    moment_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # jobid -> add_moment_task job
    moments: dict[str, dict[str, Any]] = field(default_factory=dict)  # moment_id -> company Moments task
    # (userid, day start as a Unix time, China midnight) -> raw counts of 联系客户统计 (routes_behavior.record)
    behavior: dict[tuple[str, int], dict[str, float]] = field(default_factory=dict)
    behavior_calls: list[dict[str, Any]] = field(default_factory=list)  # get_user_behavior_data requests
    seq: int = 0
    _index: tuple[int, dict[str, list[Relation]], dict[str, list[Relation]]] | None = None

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq:08d}"

    def _indexes(self) -> tuple[dict[str, list[Relation]], dict[str, list[Relation]]]:
        if self._index is None or self._index[0] != self.relations.version:
            by_user: dict[str, list[Relation]] = {}
            by_ext: dict[str, list[Relation]] = {}
            for r in self.relations.values():
                by_user.setdefault(r.userid, []).append(r)
                by_ext.setdefault(r.external_userid, []).append(r)
            for rows in by_user.values():
                rows.sort(key=lambda r: r.external_userid)
            for rows in by_ext.values():
                rows.sort(key=lambda r: (r.createtime, r.userid))
            self._index = (self.relations.version, by_user, by_ext)
        return self._index[1], self._index[2]

    def followers(self, external_userid: str) -> list[Relation]:
        return list(self._indexes()[1].get(external_userid, []))

    def customers_of(self, userid: str) -> list[Relation]:
        return list(self._indexes()[0].get(userid, []))


def external_userid(n: int) -> str:
    """A 32-character external userid in WeCom's shape (``wm`` + 30 characters)."""
    return f"wmDemo{n:026d}"


def seed(company: Company, guides: int, contacts_per_guide: int, shared: float = 0.0, seed: int = 7) -> None:
    """Add ``guides`` members each following ``contacts_per_guide`` new contacts (``shared`` share also follow the
    next guide), with unionids, add_way and a channel state, created over the last 180 days."""
    rng = random.Random(seed)
    base = 1_700_000_000
    n = len(company.contacts)
    for _ in range(guides):
        uid = f"guide{len(company.members) + 1:04d}"
        company.members[uid] = f"导购{len(company.members) + 1}"
        for _ in range(contacts_per_guide):
            eid = external_userid(n)
            company.contacts[eid] = Contact(eid, f"客户{n}", unionid=f"oUnion{n:022d}", gender=rng.choice([0, 1, 2]))
            company.relations[(uid, eid)] = Relation(
                uid,
                eid,
                base + rng.randrange(180 * 86400),
                add_way=rng.choice([1, 1, 1, 2, 3, 4]),
                state=f"ch{rng.randrange(5)}",
            )
            n += 1
    if shared and guides > 1:
        uids = list(company.members)
        for (uid, eid), _ in list(company.relations.items()):
            if rng.random() < shared:
                other = uids[(uids.index(uid) + 1) % len(uids)]
                company.relations.setdefault((other, eid), Relation(other, eid, base + 200 * 86400, add_way=201))
