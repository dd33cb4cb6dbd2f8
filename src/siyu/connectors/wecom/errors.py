"""WeCom errcodes: what each means and what to do; ``WeComError`` carries them."""

from __future__ import annotations

from siyu.errors import SiyuError

# errcode -> (meaning, what to do)
ERRCODES: dict[int, tuple[str, str]] = {
    -1: ("WeCom is busy", "retried up to 3 times; if it persists, try again in a minute"),
    40001: ("invalid secret", "check the app secret (客户联系 secret) in the WeCom admin console"),
    40003: ("invalid userid", "the member does not exist or is outside the app's visible range"),
    40013: ("invalid corpid", "check the CorpID (我的企业 → 企业信息)"),
    40014: ("invalid access_token", "the token is refetched once automatically; check corpid/secret if it repeats"),
    40050: ("no such group chat", "the group was dismissed or the chat_id is wrong; sync groups again"),
    40058: ("invalid parameter", "a field is missing, too long or out of range; see errmsg for which"),
    40068: ("invalid tag id", "the corp tag or tag group was deleted; sync tags again"),
    40071: ("tag name exists", "choose another tag name within this group"),
    40096: ("invalid external userid", "the customer id is wrong or belongs to another app; resync contacts"),
    40128: ("customer transferred too often", "a customer can be transferred at most 2 times in 90 days"),
    40129: ("customer transfer in progress", "wait for the pending transfer (24 h) to finish"),
    41001: ("access_token missing", "a client bug: every call needs ?access_token="),
    41050: ("welcome code invalid or expired", "the 20 s window passed; the welcome message can no longer be sent"),
    41051: ("welcome message already sent", "final: never retry"),
    41096: ("welcome message being sent by another app", "may retry once the other app is done"),
    42001: ("access_token expired", "the token is refetched once automatically"),
    44004: ("empty content", "give text.content or at least one attachment"),
    45002: ("content too long", "text.content is limited to 4000 bytes"),
    45009: ("API frequency limit", "backed off; lower the call rate (≤ 10,000/min per API per company)"),
    45033: ("API concurrency limit", "backed off; lower the number of concurrent calls"),
    47001: ("bad request format", "a client bug: the body must be JSON"),
    48002: ("API forbidden", "grant the app the customer-contact permission in the admin console"),
    60111: ("userid not found", "the member left or the userid is wrong; resync members"),
    84061: ("no such customer relation", "the member does not (or no longer) follow this customer"),
}


def describe(errcode: int) -> tuple[str, str]:
    """(meaning, what to do) of an errcode; unknown codes point at WeCom's errcode lookup."""
    return ERRCODES.get(
        errcode,
        ("unknown WeCom error", f"look it up at https://open.work.weixin.qq.com/devtool/query?e={errcode}"),
    )


class WeComError(SiyuError):
    """A WeCom call failed: ``errcode``, WeCom's ``errmsg``, our ``meaning`` and ``action`` (what to do)."""

    status_code = 502

    def __init__(self, api: str, errcode: int, errmsg: str = "") -> None:
        self.api, self.errcode, self.errmsg = api, errcode, errmsg
        self.meaning, self.action = describe(errcode)
        super().__init__(f"WeCom {api}: {errcode} {self.meaning} — {self.action} (errmsg: {errmsg})", field=api)


class WeComUnavailable(WeComError):
    """WeCom could not be reached (network error or non-JSON answer) after retries."""

    def __init__(self, api: str, detail: str) -> None:
        super().__init__(api, -1, detail)
        self.message = f"WeCom {api}: unreachable after retries ({detail}) — check the network / api base URL"
        self.args = (self.message,)
