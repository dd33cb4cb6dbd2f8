"""The errcodes the local WeCom server answers with, and their errmsg text (as WeCom words them)."""

from __future__ import annotations

MSGS: dict[int, str] = {
    -1: "system busy",
    0: "ok",
    40001: "invalid credential",
    40003: "invalid userid",
    40004: "invalid media type",
    40005: "invalid file type",
    40006: "invalid file size",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40050: "chatid not found",
    40058: "invalid parameter",
    40068: "invalid tagid",
    40071: "invalid tag name",
    40096: "invalid external userid",
    40128: "customer transfer too frequently",
    40129: "customer is being transferred",
    41001: "access_token missing",
    41005: "media data missing",
    41050: "welcome code invalid or expired",
    41051: "welcome msg already sent",
    41096: "welcome msg is being sent by another app",
    42001: "access_token expired",
    44004: "empty content",
    45002: "content size out of limit",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
    47001: "data format error",
    60111: "userid not found",
    60123: "invalid party id",
    84061: "not external contact",
}


class WeComErr(Exception):
    """Raised inside a handler: the server answers ``{"errcode": code, "errmsg": ...}``."""

    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail

    def body(self, hint: str) -> dict[str, object]:
        msg = MSGS.get(self.code, "error")
        if self.detail:
            msg += f" ({self.detail})"
        if self.code:
            msg += f", hint: [{hint}], more info at https://open.work.weixin.qq.com/devtool/query?e={self.code}"
        return {"errcode": self.code, "errmsg": msg}


def need(cond: bool, code: int, detail: str = "") -> None:
    """Raise ``WeComErr(code, detail)`` unless ``cond``."""
    if not cond:
        raise WeComErr(code, detail)
