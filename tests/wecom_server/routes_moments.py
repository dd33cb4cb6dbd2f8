"""Customer Moments (客户朋友圈), company-published: add_moment_task (async, a jobid), get_moment_task_result,
get_moment_list and get_moment_task, as WeCom documents them (客户联系 → 客户朋友圈).

A job is done ``server.moment_job_delay`` seconds (server clock) after it was made: until then its status is 2
(正在创建), then 3 with the result (moment_id, invalid senders and tags). A member posts the task in the app
(``actions.publish_moment``); until then their publish_status is 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.wecom_server.codes import need
from tests.wecom_server.params import integer, items, page, text

if TYPE_CHECKING:
    from tests.wecom_server.server import WeComServer

MONTH = 30 * 86400


def _attachments(q: dict[str, Any]) -> list[dict[str, Any]]:
    out = items(q, "attachments", 9)
    for a in out:
        need(isinstance(a, dict) and a.get("msgtype") in {"image", "video", "link"}, 40058, "attachments[].msgtype")
        body = a.get(a["msgtype"])
        need(isinstance(body, dict), 40058, f"attachments[].{a['msgtype']}")
        if a["msgtype"] in ("image", "video"):
            need(bool(body.get("media_id")), 40058, "media_id missing")
        else:
            need(str(body.get("url", "")).startswith(("http://", "https://")), 40058, "link.url")
    return out


def add_moment_task(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    t = q.get("text") or {}
    need(isinstance(t, dict), 40058, "text must be an object")
    content = t.get("content") or ""
    need(isinstance(content, str), 40058, "text.content must be a string")
    need(len(content) <= 2000 and len(content.encode()) <= 4000, 40058, "invalid text size")
    attachments = _attachments(q)
    need(bool(content or attachments), 44004)
    vr = q.get("visible_range") or {}
    need(isinstance(vr, dict), 40058, "visible_range")
    senders = items(vr.get("sender_list") or {}, "user_list", 100_000)
    tags = items(vr.get("external_contact_list") or {}, "tag_list", 10_000)
    jobid = srv.company.next_id("job")
    srv.company.moment_jobs[jobid] = {
        "at": srv.now(),
        "content": content,
        "attachments": attachments,
        "senders": [str(u) for u in senders] or sorted(srv.company.members),
        "tags": [str(x) for x in tags],
    }
    return {"jobid": jobid}


def _finish(srv: WeComServer, job: dict[str, Any]) -> dict[str, Any]:
    if "result" in job:
        return dict(job["result"])
    valid = [u for u in job["senders"] if u in srv.company.members]
    bad_users = [u for u in job["senders"] if u not in srv.company.members]
    bad_tags = [x for x in job["tags"] if x not in srv.company.tags]
    moment_id = srv.company.next_id("mom")
    srv.company.moments[moment_id] = {
        "moment_id": moment_id,
        "creator": "",
        "create_time": int(job["at"]),
        "create_type": 0,
        "visible_type": 0 if job["tags"] else 1,
        "content": job["content"],
        "attachments": job["attachments"],
        "senders": valid,
        "tags": [x for x in job["tags"] if x not in bad_tags],
        "published": {},  # userid -> time posted
    }
    job["result"] = {
        "errcode": 0,
        "errmsg": "ok",
        "moment_id": moment_id,
        "invalid_sender_list": {"user_list": bad_users},
        "invalid_external_contact_list": {"tag_list": bad_tags},
    }
    return dict(job["result"])


def get_moment_task_result(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    jobid = text(q, "jobid", 128, required=True)
    job = srv.company.moment_jobs.get(jobid)
    need(job is not None, 40058, f"jobid {jobid} unknown")
    assert job is not None
    if srv.now() - job["at"] < srv.moment_job_delay:
        return {"status": 2, "type": "add_moment_task"}
    return {"status": 3, "type": "add_moment_task", "result": _finish(srv, job)}


def _moment_api(m: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: m[k] for k in ("moment_id", "creator", "create_time", "create_type", "visible_type")}
    out["text"] = {"content": m["content"]}
    out["image"] = [a["image"] for a in m["attachments"] if a["msgtype"] == "image"]
    links = [a["link"] for a in m["attachments"] if a["msgtype"] == "link"]
    if links:
        out["link"] = {"title": links[0].get("title", ""), "url": links[0]["url"]}
    return out


def get_moment_list(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    start = integer(q, "start_time", 0, 1, 2**40)
    end = integer(q, "end_time", 0, 1, 2**40)
    need(start > 0 and end > 0, 40058, "start_time and end_time are required")
    need(0 <= end - start <= MONTH, 40058, "start_time and end_time must be at most a month apart")
    creator = text(q, "creator", 64)
    filter_type = q.get("filter_type", 2)
    need(filter_type in (0, 1, 2, None), 40058, "filter_type must be 0, 1 or 2")
    limit = integer(q, "limit", 20, 1, 20)
    rows = [
        _moment_api(m)
        for m in sorted(srv.company.moments.values(), key=lambda m: (m["create_time"], m["moment_id"]))
        if start <= m["create_time"] <= end
        and filter_type != 1  # the server holds company-published Moments only
        and (not creator or m["creator"] == creator)
    ]
    chunk, nxt = page(rows, q, limit)
    return {"moment_list": chunk, "next_cursor": nxt}


def get_moment_task(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    moment_id = text(q, "moment_id", 128, required=True)
    m = srv.company.moments.get(moment_id)
    need(m is not None, 40058, f"moment_id {moment_id} unknown")
    assert m is not None
    limit = integer(q, "limit", 500, 1, 1000)
    rows = [{"userid": u, "publish_status": 1 if u in m["published"] else 0} for u in m["senders"]]
    chunk, nxt = page(rows, q, limit)
    return {"task_list": chunk, "next_cursor": nxt}
