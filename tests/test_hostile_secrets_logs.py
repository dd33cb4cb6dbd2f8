"""Secrets never reach the logs: every log record (all loggers, DEBUG) captured during a WeCom configuration save,
a WeCom contact sync (corpsecret and access_token travel in URLs) and an SMS provider send."""

from __future__ import annotations

import logging

import httpx
import pytest

from siyu.api.app import create_app
from siyu.connectors.redact import redact
from siyu.connectors.sms import AliyunSms
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context
from tests.sms_server import sms_server
from tests.support.live import live_server
from tests.test_wecom_ops_env import CORP, KEY, TOKEN, wecom_brand


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records)


def test_wecom_config_save_and_sync_log_no_secret(ctx: Context, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with wecom_brand(ctx, guides=1, per_guide=2) as env:  # saves the config and syncs contacts (gettoken)
        brands.create_user(ctx, "acme", "boss", "s3cret-pass", Role.ADMIN)
        with live_server(create_app(ctx, with_console=False)) as base:
            login = httpx.post(f"{base}/api/auth/login", json={"username": "boss", "password": "s3cret-pass"})
            h = {"Authorization": f"Bearer {login.json()['token']}"}
            body = {"corp_id": CORP, "token": TOKEN, "encoding_aes_key": KEY, "secret": "contact-secret"}
            resp = httpx.put(f"{base}/api/wecom/config", json={**body, "api_base": env.wecom}, headers=h)
            assert resp.status_code == 200, resp.text
            assert "contact-secret" not in resp.text and KEY not in resp.text
    text = _logged(caplog)
    assert "corpsecret=***" in text  # the token request was logged, masked
    for secret in ("contact-secret", KEY, "s3cret-pass"):  # (the session token is in this test client's own trace)
        assert secret not in text
    token_values = [r.getMessage() for r in caplog.records if "access_token=" in r.getMessage()]
    assert all("access_token=***" in m for m in token_values)


def test_sms_send_logs_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with sms_server() as vendor:
        client = AliyunSms("testid", "testsecret", endpoint=vendor.url, backoff=0.01)
        result = client.send("+8613800138000", "SMS_71390007", {"customer": "张三"}, "思域测试", out_id="m1")
        assert result.ok, result
    text = _logged(caplog)
    assert "HTTP Request" in text and "testsecret" not in text


def test_redact_masks_secret_query_values_only() -> None:
    line = "GET https://q/cgi-bin/gettoken?corpid=ww1&corpsecret=abc123&x=1 and access_token=T0K&Key=k"
    assert redact(line) == "GET https://q/cgi-bin/gettoken?corpid=ww1&corpsecret=***&x=1 and access_token=***&Key=***"
