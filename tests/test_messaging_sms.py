"""Alibaba Cloud SMS SendSms: the vendor's published signature examples, and real requests against the local
vendor server (tests/sms_server) that re-checks every signature and answers with the documented codes."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest

from siyu.connectors.sms import AliyunSms, percent_encode, sign, string_to_sign
from siyu.connectors.sms.aliyun import vendor_phone
from tests.sms_server import SmsState, answer, server_signature, sms_server

# Alibaba Cloud, "Request syntax and signature method V2 for RPC APIs" / API 签名机制(示例): DescribeRegions with
# AccessKeyId testid and AccessKeySecret testsecret (https://developer.aliyun.com/ask/210168,
# https://help.aliyun.com/en/document_detail/145075.html: Signature=CT9X0VtwR86fNWSnsc6v8YGOjuE%3D).
DESCRIBE_REGIONS = {
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "Format": "XML",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "TimeStamp": "2016-02-23T12:46:24Z",
    "Version": "2014-05-26",
}
DESCRIBE_REGIONS_STRING_TO_SIGN = (
    "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1"
    "%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0"
    "%26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
)
# Alibaba Cloud SMS, HTTP 协议及签名 (the SendSms example): testId / testSecret, a Chinese sign name.
SEND_SMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
SEND_SMS_URL = (
    "http://dysmsapi.aliyuncs.com/?Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D&AccessKeyId=testId&Action=SendSms"
    "&Format=XML&OutId=123&PhoneNumbers=15300000001&RegionId=cn-hangzhou"
    "&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8"
    "&SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0"
    "&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D&Timestamp=2017-07-12T02%3A42%3A19Z"
    "&Version=2017-05-25"
)


def test_published_describe_regions_example() -> None:
    assert string_to_sign(DESCRIBE_REGIONS) == DESCRIBE_REGIONS_STRING_TO_SIGN
    assert sign(DESCRIBE_REGIONS, "testsecret") == "CT9X0VtwR86fNWSnsc6v8YGOjuE="
    # the same example with the parameter spelled Timestamp (as most pages now write it)
    spelled = {("Timestamp" if k == "TimeStamp" else k): v for k, v in DESCRIBE_REGIONS.items()}
    assert sign(spelled, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    # the key is secret + "&": without it the published value does not come out
    assert sign(DESCRIBE_REGIONS, "testsecret&") != "CT9X0VtwR86fNWSnsc6v8YGOjuE="


def test_published_send_sms_example_and_url() -> None:
    assert sign(SEND_SMS, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    client = AliyunSms("testId", "testSecret", endpoint="http://dysmsapi.aliyuncs.com/")
    assert client.url({**SEND_SMS, "Signature": sign(SEND_SMS, "testSecret")}) == SEND_SMS_URL
    # the local vendor computes the same signature independently
    assert server_signature(SEND_SMS, "testSecret")[1] == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_percent_encoding_rules() -> None:
    assert percent_encode("a b*c~d+e/f") == "a%20b%2Ac~d%2Be%2Ff"
    assert percent_encode("思") == "%E6%80%9D"
    assert vendor_phone("+8613800138000") == "13800138000" and vendor_phone("+85261234567") == "85261234567"


def _client(url: str, **kw: object) -> AliyunSms:
    return AliyunSms("testid", "testsecret", endpoint=url, backoff=0.01, **kw)  # type: ignore[arg-type]


def test_send_against_the_local_vendor() -> None:
    with sms_server() as vendor:
        r = _client(vendor.url).send("+8613800138000", "SMS_71390007", {"customer": "张三"}, "思域测试", out_id="m1")
        assert r.ok and r.code == "OK" and r.message_id == vendor.state.sent[0]["biz_id"] and r.request_id
        sent = vendor.state.sent[0]
        assert sent == {
            "phone": "13800138000",
            "sign_name": "思域测试",
            "template": "SMS_71390007",
            "params": {"customer": "张三"},
            "out_id": "m1",
            "biz_id": r.message_id,
        }
        q = dict(parse_qsl(urlsplit("?" + vendor.state.requests[0]).query))
        assert q["Format"] == "JSON" and q["Version"] == "2017-05-25" and q["Action"] == "SendSms"

        # a wrong secret: the vendor's SignatureDoesNotMatch, final
        bad = AliyunSms("testid", "wrong", endpoint=vendor.url).send(
            "+8613800138001", "SMS_71390007", {"customer": "x"}, "思域测试"
        )
        assert (
            not bad.ok
            and bad.code == "SignatureDoesNotMatch"
            and not bad.retryable
            and "AccessKeySecret" in bad.meaning
        )
        unknown = AliyunSms("nobody", "x", endpoint=vendor.url).send("+8613800138001", "SMS_71390007", {}, "思域测试")
        assert unknown.code == "InvalidAccessKeyId.NotFound" and not unknown.retryable


def test_documented_business_errors() -> None:
    with sms_server() as vendor:
        c = _client(vendor.url)
        hong_kong = c.send("+85261234567", "SMS_71390007", {"customer": "x"}, "思域测试")
        assert hong_kong.ok  # Hong Kong: country code + number
        r = c.send("+8613800138000", "SMS_404", {}, "思域测试")
        assert r.code == "isv.SMS_TEMPLATE_ILLEGAL" and not r.retryable
        r = c.send("+8613800138000", "SMS_71390007", {"customer": "x"}, "别的签名")
        assert r.code == "isv.SMS_SIGNATURE_ILLEGAL" and not r.retryable
        r = c.send("+8613800138000", "SMS_100001", {"name": "x"}, "思域测试")
        assert r.code == "isv.TEMPLATE_MISSING_PARAMETERS" and not r.retryable
        r = c.send("+1", "SMS_71390007", {"customer": "x"}, "思域测试")
        assert r.code == "isv.MOBILE_NUMBER_ILLEGAL" and not r.retryable and "非法手机号" in r.meaning
        # flow control: one per number per minute → retry later (not at once: one request only)
        first = c.send("+8613900139000", "SMS_71390007", {"customer": "x"}, "思域测试")
        n = len(vendor.state.requests)
        limited = c.send("+8613900139000", "SMS_71390007", {"customer": "x"}, "思域测试")
        assert first.ok and limited.code == "isv.BUSINESS_LIMIT_CONTROL" and limited.retryable
        assert limited.retry_after == 60 and len(vendor.state.requests) == n + 1 and "分钟级流控" in limited.meaning
        vendor.state.balance = 0
        r = c.send("+8613700137000", "SMS_71390007", {"customer": "x"}, "思域测试")
        assert r.code == "isv.AMOUNT_NOT_ENOUGH" and not r.retryable


def test_transient_errors_are_retried_with_backoff_and_timeouts_are_not() -> None:
    waits: list[float] = []
    with sms_server() as vendor:
        vendor.state.faults = [("http", 503), ("code", "isv.SYSTEM_ERROR")]
        c = _client(vendor.url, sleep=waits.append)
        r = c.send("+8613800138000", "SMS_71390007", {"customer": "x"}, "思域测试")
        # 503 is retried at once (0.01 s), isv.SYSTEM_ERROR only later (retryable, 5 s)
        assert r.code == "isv.SYSTEM_ERROR" and r.retryable and r.retry_after == 5 and r.attempts == 2
        assert waits == [0.01]
        vendor.state.faults = [("http", 503), ("http", 503), ("http", 503)]
        r = c.send("+8613800138000", "SMS_71390007", {"customer": "x"}, "思域测试")
        assert not r.ok and r.attempts == 3 and waits == [0.01, 0.01, 0.02]
        # the vendor got it but the answer came too late: outcome unknown, never retried automatically
        vendor.state.faults = [("delay", 1.0)]
        before = len(vendor.state.sent)
        r = _client(vendor.url, timeout=0.3).send("+8613600136000", "SMS_71390007", {"customer": "x"}, "思域测试")
        assert r.code == "Timeout" and r.outcome_unknown and not r.retryable and r.attempts == 1
        time.sleep(0.8)
        assert len(vendor.state.sent) == before + 1
    # nobody listening: connection refused is retried (it never reached the vendor)
    r = _client("http://127.0.0.1:9/", sleep=lambda _s: None).send("+8613800138000", "SMS_1", {}, "x")
    assert r.code == "ConnectError" and r.retryable and r.attempts == 3


def test_vendor_rejects_stale_and_replayed_requests() -> None:
    state = SmsState()
    c = AliyunSms("testid", "testsecret", nonce=lambda: "fixed-nonce")
    q = c.request_params("+8613800138000", "SMS_71390007", {"customer": "x"}, "思域测试")
    raw = c.url(q).partition("?")[2]
    now = datetime.strptime(q["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    assert answer(state, raw, now)[1]["Code"] == "OK"
    assert answer(state, raw, now)[1]["Code"] == "SignatureNonceUsed"
    state.nonces.clear()
    assert answer(state, raw, now + 16 * 60)[1]["Code"] == "InvalidTimeStamp.Expired"
    tampered = raw.replace("13800138000", "13800138001")
    status, body = answer(state, tampered, now)
    assert (
        status == 400
        and body["Code"] == "SignatureDoesNotMatch"
        and "server string to sign is:GET&%2F&" in body["Message"]
    )
    missing = "&".join(p for p in raw.split("&") if not p.startswith("SignatureNonce="))
    assert answer(state, missing, now)[1]["Code"] == "MissingParameter"


@pytest.mark.parametrize("code", ["isv.DAY_LIMIT_CONTROL", "Throttling.User"])
def test_classification_of_other_documented_codes(code: str) -> None:
    from siyu.connectors.sms.aliyun import classify

    meaning, retryable, after = classify(code, "msg")
    assert retryable and after and meaning.endswith("msg")
    assert classify("isv.SOMETHING_NEW")[1] is False
