"""Alibaba Cloud SMS (短信服务, dysmsapi 2017-05-25) ``SendSms`` over the RPC API with Signature Version 1.0.

Signing, as Alibaba documents it (RPC signature mechanism V2):

1. Canonicalised query: every parameter except ``Signature``, sorted by name, name and value each
   percent-encoded (UTF-8; only ``A-Z a-z 0-9 - _ . ~`` stay literal, space → ``%20``), joined ``k=v`` by ``&``.
2. StringToSign = ``GET&%2F&`` + percent-encode(canonicalised query).
3. Signature = Base64(HMAC-SHA1(key = AccessKeySecret + ``&``, StringToSign)), sent percent-encoded.

Answers are JSON ``{"Code", "Message", "BizId", "RequestId"}``; ``Code == "OK"`` is success. Gateway errors
(signature, key, throttling) come with HTTP 4xx/5xx and the same shape. ``ERRORS`` classifies the documented codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from siyu.connectors.sms.base import SmsResult

ENDPOINT = "https://dysmsapi.aliyuncs.com/"
VERSION = "2017-05-25"

# code → (meaning and what to do, retryable, seconds to wait before retrying)
ERRORS: dict[str, tuple[str, bool, float | None]] = {
    "isv.BUSINESS_LIMIT_CONTROL": (
        "业务限流 business rate limit: this number got too many messages (by default 1/min, 5/hour, 10/day); "
        "retried later",
        True,
        60.0,
    ),
    "isv.DAY_LIMIT_CONTROL": ("日发送限额 the account's daily quota is used up; retried tomorrow", True, 3600.0),
    "isv.MOBILE_NUMBER_ILLEGAL": ("非法手机号 the phone number is not valid; fix the number", False, None),
    "isv.MOBILE_COUNT_OVER_LIMIT": ("too many phone numbers in one request (max 1000)", False, None),
    "isv.SMS_SIGNATURE_ILLEGAL": (
        "签名不合法 the sign name is not approved for this account; check it in the SMS console",
        False,
        None,
    ),
    "isv.SMS_TEMPLATE_ILLEGAL": (
        "模板不合法 the template code is unknown or not approved; check it in the SMS console",
        False,
        None,
    ),
    "isv.TEMPLATE_MISSING_PARAMETERS": ("模板缺少变量 the template needs parameters that were not sent", False, None),
    "isv.INVALID_JSON_PARAM": ("TemplateParam is not valid JSON", False, None),
    "isv.PARAM_LENGTH_LIMIT": ("a template parameter is too long", False, None),
    "isv.INVALID_PARAMETERS": ("参数异常 a request parameter is not valid", False, None),
    "isv.AMOUNT_NOT_ENOUGH": ("账户余额不足 the account balance is too low; top it up, then resend", False, None),
    "isv.OUT_OF_SERVICE": ("业务停机 the account is suspended (e.g. unpaid); top it up, then resend", False, None),
    "isv.ACCOUNT_NOT_EXISTS": ("the account does not exist", False, None),
    "isv.ACCOUNT_ABNORMAL": ("the account is abnormal; contact Alibaba Cloud", False, None),
    "isv.BLACK_KEY_CONTROL_LIMIT": ("黑名单管控 the content hits a blocked keyword", False, None),
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": ("this sign name/template cannot send to mainland numbers", False, None),
    "isv.SYSTEM_ERROR": ("vendor system error; retried", True, 5.0),
    "isp.SYSTEM_ERROR": ("vendor system error; retried", True, 5.0),
    "isp.RAM_PERMISSION_DENY": (
        "the AccessKey's RAM user may not call SendSms; grant AliyunDysmsFullAccess",
        False,
        None,
    ),
    "SignatureDoesNotMatch": ("签名不匹配 the AccessKeySecret is wrong (or the clock is off)", False, None),
    "InvalidAccessKeyId.NotFound": ("the AccessKeyId does not exist; check the provider settings", False, None),
    "InvalidAccessKeyId.Inactive": ("the AccessKeyId is disabled; enable it or use another", False, None),
    "InvalidTimeStamp.Expired": ("the request timestamp is too old; check the server clock", True, 5.0),
    "SignatureNonceUsed": ("the signature nonce was reused; retried with a new one", True, 0.0),
    "MissingParameter": ("a required parameter is missing", False, None),
    "Throttling": ("API throttled; retried", True, 2.0),
    "Throttling.User": ("API throttled for this account; retried", True, 2.0),
    "ServiceUnavailable": ("the service is unavailable; retried", True, 5.0),
    "InternalError": ("vendor internal error; retried", True, 5.0),
}
# codes after which the request certainly was not sent, so it is retried at once inside ``send``
_RETRY_NOW = frozenset({"SignatureNonceUsed", "Throttling", "Throttling.User", "ServiceUnavailable", "InternalError"})


def percent_encode(value: object) -> str:
    """Alibaba's percent encoding: UTF-8, only ``A-Z a-z 0-9 - _ . ~`` literal (so space → %20, * → %2A)."""
    return quote(str(value), safe="-_.~")


def canonical_query(params: Mapping[str, object]) -> str:
    """The sorted, encoded ``k=v&...`` string of every parameter except ``Signature``."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature")


def string_to_sign(params: Mapping[str, object], method: str = "GET") -> str:
    """``GET&%2F&`` + percent-encode(canonical query)."""
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def sign(params: Mapping[str, object], secret: str, method: str = "GET") -> str:
    """Base64(HMAC-SHA1(secret + "&", StringToSign))."""
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(params, method).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def vendor_phone(e164: str) -> str:
    """Alibaba's PhoneNumbers form: mainland numbers without +86, others as country code + number."""
    if e164.startswith("+86"):
        return e164[3:]
    return e164.lstrip("+")


def classify(code: str | None, message: str = "") -> tuple[str, bool, float | None]:
    """(meaning, retryable, retry_after) of a vendor error code; unknown codes are final."""
    meaning, retryable, after = ERRORS.get(code or "", ("unknown error code; see the message", False, None))
    return (f"{meaning} — {message}" if message else meaning), retryable, after


class AliyunSms:
    """``SendSms`` with the brand's AccessKey. Quick retries (``retries``, backoff × 2^n) only where the request
    surely was not sent (connection refused, throttling, 5xx, nonce reuse); a read timeout is ``outcome_unknown``."""

    name = "aliyun"

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        endpoint: str = ENDPOINT,
        region_id: str = "cn-hangzhou",
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.endpoint = endpoint
        self.region_id = region_id
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self.clock = clock
        self.nonce = nonce

    def request_params(
        self, phone: str, template: str, params: Mapping[str, str], sign_name: str, out_id: str | None = None
    ) -> dict[str, str]:
        """The signed query parameters of one SendSms call (a fresh nonce and timestamp)."""
        q: dict[str, str] = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "PhoneNumbers": vendor_phone(phone),
            "RegionId": self.region_id,
            "SignName": sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self.nonce(),
            "SignatureVersion": "1.0",
            "TemplateCode": template,
            "Timestamp": self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": VERSION,
        }
        if params:
            q["TemplateParam"] = json.dumps(dict(params), ensure_ascii=False, separators=(",", ":"))
        if out_id:
            q["OutId"] = out_id
        q["Signature"] = sign(q, self.access_key_secret)
        return q

    def url(self, q: Mapping[str, str]) -> str:
        """The GET URL: Signature first, then the canonical query (as in Alibaba's examples)."""
        return f"{self.endpoint}?Signature={percent_encode(q['Signature'])}&{canonical_query(q)}"

    def send(
        self, phone: str, template: str, params: Mapping[str, str], sign_name: str, out_id: str | None = None
    ) -> SmsResult:
        """Send one message; returns the BizId on success, else the classified error."""
        attempt = 0
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            while True:
                attempt += 1
                q = self.request_params(phone, template, params, sign_name, out_id)
                try:
                    resp = client.get(self.url(q))
                except httpx.ConnectError as exc:  # never reached the vendor
                    result = SmsResult(False, code="ConnectError", meaning=f"cannot connect: {exc}", retryable=True)
                except httpx.TimeoutException as exc:
                    unknown = not isinstance(exc, httpx.ConnectTimeout)
                    return SmsResult(
                        False,
                        code="Timeout",
                        meaning=(
                            "no answer in time: the vendor may have sent the message; check QuerySendDetails by "
                            "OutId before resending"
                            if unknown
                            else f"connect timeout: {exc}"
                        ),
                        retryable=not unknown,
                        outcome_unknown=unknown,
                        attempts=attempt,
                    )
                except httpx.HTTPError as exc:
                    result = SmsResult(False, code="HTTPError", meaning=f"{type(exc).__name__}: {exc}", retryable=True)
                else:
                    result = self._parse(resp)
                if result.ok or not result.retryable or attempt > self.retries:
                    return _with_attempts(result, attempt)
                if result.code not in _RETRY_NOW and result.code not in {"ConnectError", "HTTPError"}:
                    return _with_attempts(result, attempt)  # e.g. BUSINESS_LIMIT_CONTROL: later, not now
                self.sleep(self.backoff * 2 ** (attempt - 1))

    def _parse(self, resp: httpx.Response) -> SmsResult:
        try:
            body: dict[str, Any] = resp.json()
        except ValueError:
            retry = resp.status_code >= 500
            code = "InternalError" if retry else f"HTTP{resp.status_code}"
            return SmsResult(False, code=code, meaning=f"HTTP {resp.status_code}: {resp.text[:200]}", retryable=retry)
        code = str(body.get("Code") or f"HTTP{resp.status_code}")
        request_id = body.get("RequestId")
        if code == "OK" and resp.status_code == 200:
            return SmsResult(True, message_id=body.get("BizId"), request_id=request_id, code="OK", meaning="OK")
        meaning, retryable, after = classify(code, str(body.get("Message") or ""))
        if code not in ERRORS and resp.status_code >= 500:
            retryable, after = True, 5.0
        return SmsResult(
            False, request_id=request_id, code=code, meaning=meaning, retryable=retryable, retry_after=after
        )


def _with_attempts(r: SmsResult, attempts: int) -> SmsResult:
    from dataclasses import replace

    return replace(r, attempts=attempts)
