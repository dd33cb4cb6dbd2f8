"""A local Alibaba Cloud SMS endpoint (dysmsapi 2017-05-25 ``SendSms``) that answers as the vendor documents.

It re-computes the RPC Signature Version 1.0 from the raw query string exactly as Alibaba documents it (its own
independent implementation: byte-level percent-encoding, sorted canonical query, ``GET&%2F&…``, HMAC-SHA1 with
``secret + "&"``) and rejects a mismatch with ``SignatureDoesNotMatch`` (HTTP 400) showing its string to sign.
It checks the common parameters (missing → ``MissingParameter``, unknown key → ``InvalidAccessKeyId.NotFound``,
stale timestamp → ``InvalidTimeStamp.Expired``, reused nonce → ``SignatureNonceUsed``), then the business rules:
phone format (``isv.MOBILE_NUMBER_ILLEGAL``), sign name and template (``isv.SMS_SIGNATURE_ILLEGAL``,
``isv.SMS_TEMPLATE_ILLEGAL``), template variables (``isv.TEMPLATE_MISSING_PARAMETERS``, ``isv.INVALID_JSON_PARAM``),
balance (``isv.AMOUNT_NOT_ENOUGH``) and the per-number flow control (1/min, 5/hour, 10/day →
``isv.BUSINESS_LIMIT_CONTROL``). Success: ``{"Message": "OK", "RequestId", "BizId", "Code": "OK"}``.

``faults`` injects one-off answers for the next requests: ``("http", 503)``, ``("code", "isv.SYSTEM_ERROR")``,
``("delay", seconds)`` (answers after a delay, having sent the message).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
COMMON = (
    "AccessKeyId",
    "Action",
    "Format",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "Timestamp",
    "Version",
    "Signature",
)
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
MAINLAND = re.compile(r"^1[3-9]\d{9}$")
INTERNATIONAL = re.compile(r"^(?!86)[1-9]\d{7,14}$")
FLOW_LIMITS = ((60, 1, "分钟"), (3600, 5, "小时"), (86400, 10, "天"))


def encode(text: str) -> str:
    """The documented percent-encoding, byte by byte (UTF-8; only A-Z a-z 0-9 - _ . ~ literal; %XY upper-case)."""
    return "".join(chr(b) if b in UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8"))


def decode(text: str) -> str:
    """Percent-decoding of one query component (``+`` stays ``+``, as RFC 3986 has it)."""
    return unquote(text, encoding="utf-8", errors="strict")


def server_signature(params: dict[str, str], secret: str, method: str = "GET") -> tuple[str, str]:
    """(StringToSign, Signature) as the vendor computes them."""
    canonical = "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(params.items()) if k != "Signature")
    to_sign = f"{method}&{encode('/')}&{encode(canonical)}"
    digest = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    return to_sign, base64.b64encode(digest).decode()


@dataclass
class SmsState:
    """Accounts, approved signs/templates, sent messages and knobs of the local vendor."""

    keys: dict[str, str] = field(default_factory=lambda: {"testid": "testsecret"})
    signs: set[str] = field(default_factory=lambda: {"思域测试"})
    templates: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"SMS_71390007": ("customer",), "SMS_100001": ("name", "coupon")}
    )
    balance: int = 1_000_000
    timestamp_tolerance: float = 15 * 60
    delay: float = 0.0  # seconds every answer waits (after the message is recorded)
    sent: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # raw query strings
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    faults: list[tuple[str, Any]] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    by_phone: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _error(status: int, code: str, message: str, host: bool = True) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"RequestId": str(uuid.uuid4()).upper(), "Message": message, "Code": code}
    if host:
        body["HostId"] = "dysmsapi.aliyuncs.com"
        body["Recommend"] = "https://next.api.aliyun.com/troubleshoot?q=" + code
    return status, body


def answer(state: SmsState, raw_query: str, now: float) -> tuple[int, dict[str, Any]]:
    """The vendor's answer to one request (the rules listed in the module docstring)."""
    params: dict[str, str] = {}
    for part in raw_query.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        params[decode(k)] = decode(v)
    for name in COMMON:
        if not params.get(name):
            return _error(
                400,
                "MissingParameter",
                f'The input parameter "{name}" that is mandatory for processing this request is not supplied.',
            )
    if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
        return _error(400, "InvalidSignatureMethod", "Specified signature method is not supported.")
    secret = state.keys.get(params["AccessKeyId"])
    if secret is None:
        return _error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    to_sign, expected = server_signature(params, secret)
    if not hmac.compare_digest(expected, params["Signature"]):
        return _error(
            400,
            "SignatureDoesNotMatch",
            f"Specified signature is not matched with our calculation. server string to sign is:{to_sign}",
        )
    if not TIMESTAMP.match(params["Timestamp"]):
        return _error(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
    ts = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    if abs(now - ts) > state.timestamp_tolerance:
        return _error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
    with state.lock:
        if params["SignatureNonce"] in state.nonces:
            return _error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        state.nonces.add(params["SignatureNonce"])
    if params["Action"] != "SendSms":
        return _error(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
    if params["Version"] != "2017-05-25":
        return _error(400, "InvalidVersion", "Specified parameter Version is not valid.")
    for name in ("PhoneNumbers", "SignName", "TemplateCode"):
        if not params.get(name):
            return _error(
                400,
                "MissingParameter",
                f'The input parameter "{name}" that is mandatory for processing this request is not supplied.',
            )
    biz = _business(state, params, now)
    if biz is not None:
        return 200, {"Message": biz[1], "RequestId": str(uuid.uuid4()).upper(), "Code": biz[0]}
    biz_id = f"{int(now * 1000) % 10**12:012d}^{len(state.sent) + 1:010d}"
    state.sent.append(
        {
            "phone": params["PhoneNumbers"],
            "sign_name": params["SignName"],
            "template": params["TemplateCode"],
            "params": json.loads(params.get("TemplateParam") or "{}"),
            "out_id": params.get("OutId"),
            "biz_id": biz_id,
        }
    )
    return 200, {"Message": "OK", "RequestId": str(uuid.uuid4()).upper(), "BizId": biz_id, "Code": "OK"}


def _business(state: SmsState, p: dict[str, str], now: float) -> tuple[str, str] | None:
    phones = p["PhoneNumbers"].split(",")
    if len(phones) > 1000:
        return "isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制"
    if any(not (MAINLAND.match(x) or INTERNATIONAL.match(x)) for x in phones):
        return "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"
    if p["SignName"] not in state.signs:
        return "isv.SMS_SIGNATURE_ILLEGAL", "签名不合法(不存在或被拉黑)"
    if p["TemplateCode"] not in state.templates:
        return "isv.SMS_TEMPLATE_ILLEGAL", "模板不合法(不存在或被拉黑)"
    try:
        values = json.loads(p.get("TemplateParam") or "{}")
        if not isinstance(values, dict):
            raise ValueError
    except ValueError:
        return "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值"
    if any(name not in values for name in state.templates[p["TemplateCode"]]):
        return "isv.TEMPLATE_MISSING_PARAMETERS", "模板缺少变量"
    with state.lock:
        if state.balance < len(phones):
            return "isv.AMOUNT_NOT_ENOUGH", "账户余额不足"
        for phone in phones:
            history = [t for t in state.by_phone.get(phone, []) if now - t < 86400]
            state.by_phone[phone] = history
            for window, permits, unit in FLOW_LIMITS:
                if sum(1 for t in history if now - t < window) >= permits:
                    return "isv.BUSINESS_LIMIT_CONTROL", f"触发{unit}级流控Permits:{permits}"
        for phone in phones:
            state.by_phone[phone].append(now)
        state.balance -= len(phones)
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_args: Any) -> None:
        return None

    def do_GET(self) -> None:
        state = self.server.state
        _, _, query = self.path.partition("?")
        state.requests.append(query)
        fault = state.faults.pop(0) if state.faults else None
        if fault and fault[0] == "http":
            self._send(
                int(fault[1]),
                {
                    "Code": "ServiceUnavailable",
                    "Message": "The request has failed due to a temporary failure of the server.",
                    "RequestId": str(uuid.uuid4()).upper(),
                },
            )
            return
        if fault and fault[0] == "code":
            self._send(
                200, {"Code": fault[1], "Message": "系统出现错误，请重新调用", "RequestId": str(uuid.uuid4()).upper()}
            )
            return
        status, body = answer(state, query, self.server.clock())
        state.answers.append((status, body))
        if fault and fault[0] == "delay":
            time.sleep(float(fault[1]))
        elif state.delay:
            time.sleep(state.delay)
        self._send(status, body)

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: SmsState, clock: Any) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.clock = clock


@dataclass
class RunningSms:
    url: str
    state: SmsState


@contextmanager
def sms_server(state: SmsState | None = None, clock: Any = time.time) -> Iterator[RunningSms]:
    """Serve the local vendor on a random port; yields its endpoint URL (ending in ``/``) and its state."""
    state = state or SmsState()
    srv = _Server(state, clock)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield RunningSms(f"http://127.0.0.1:{srv.server_address[1]}/", state)
    finally:
        srv.shutdown()
        srv.server_close()
