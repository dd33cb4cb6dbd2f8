"""WeCom JS-SDK: the signature against the documentation's published example, tickets fetched from the local WeCom
server over HTTP, cached (one call per kind), refreshed after expiry and after a token error, and OAuth codes."""

from __future__ import annotations

import hashlib

import pytest

from siyu.connectors.wecom.errors import WeComError
from siyu.connectors.wecom.jssdk import JsSdk, signature
from siyu.connectors.wecom.tokens import TokenCache
from siyu.connectors.wecom.transport import Backoff, Transport
from tests.wecom_server import WeComServer, running
from tests.wecom_server.routes_jssdk import issue_code, state, valid_ticket

CORP = "wwlocal0000000001"

# 企业微信 JS-SDK 附录1 "JS-SDK使用权限签名算法" (developer.work.weixin.qq.com/document/path/90506)
DOC_TICKET = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
DOC_NONCE, DOC_TS, DOC_URL = "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value"
DOC_SIGNATURE = "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_signature_matches_the_published_example() -> None:
    assert signature(DOC_TICKET, DOC_NONCE, DOC_TS, DOC_URL) == DOC_SIGNATURE
    assert signature(DOC_TICKET, DOC_NONCE, str(DOC_TS), DOC_URL + "#wechat_redirect") == DOC_SIGNATURE
    assert signature(DOC_TICKET, DOC_NONCE, DOC_TS, DOC_URL + "&x=1") != DOC_SIGNATURE


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _sdk(srv: WeComServer, base: str, clock: Clock) -> JsSdk:
    t = Transport(CORP, "contact-secret", base, tokens=TokenCache(clock=Clock()))  # tokens: their own clock
    sdk = JsSdk(t, "1000002")
    sdk.corp_tickets = TokenCache(clock=clock)  # private caches on a test clock
    sdk.agent_tickets = TokenCache(clock=clock)
    return sdk


def test_tickets_are_cached_and_refreshed() -> None:
    srv = WeComServer(corpid=CORP)
    clock = Clock()
    with running(srv) as base:
        sdk = _sdk(srv, base, clock)
        url = "https://siyu.example/sidebar/acme/?x=1#frag"
        cfg = sdk.config(url, ["sendChatMessage"])
        acfg = sdk.agent_config(url, ["getCurExternalContact", "sendChatMessage"])
        corp, agent = sdk.corp_ticket(), sdk.agent_ticket()
        assert valid_ticket(srv, corp, "corp") and valid_ticket(srv, agent, "agent") and corp != agent
        # what the page hands to wx.config / wx.agentConfig verifies as WeCom checks it
        want = hashlib.sha1(
            f"jsapi_ticket={corp}&noncestr={cfg['nonceStr']}&timestamp={cfg['timestamp']}&url={url[:-5]}".encode()
        ).hexdigest()
        assert (cfg["appId"], cfg["signature"], cfg["beta"]) == (CORP, want, True)
        assert acfg["signature"] == signature(agent, acfg["nonceStr"], acfg["timestamp"], url)
        assert (acfg["corpid"], acfg["agentid"]) == (CORP, "1000002")
        for _ in range(20):
            sdk.config(url, [])
            sdk.agent_config(url, [])
        assert (srv.counts["get_jsapi_ticket"], srv.counts["ticket/get"]) == (1, 1)  # cached
        clock.t += 7200 - 299  # tickets within 5 minutes of expiry: fetched again
        assert sdk.corp_ticket() != corp and sdk.agent_ticket() != agent
        assert (srv.counts["get_jsapi_ticket"], srv.counts["ticket/get"]) == (2, 2)
        # an access token WeCom dropped early is refreshed once, the ticket call then succeeds
        srv.expire_tokens()
        clock.t += 7200
        sdk.corp_ticket()
        assert sdk.t.stats["token_refreshes"] == 1 and srv.counts["get_jsapi_ticket"] == 4


def test_ticket_limits_and_wrong_type() -> None:
    srv = WeComServer(corpid=CORP)
    clock = Clock()
    with running(srv) as base:
        sdk = _sdk(srv, base, clock)
        sdk.t.backoff = Backoff(first=0.01, attempts=1)
        state(srv).issued["agent"].extend([srv.now()] * 100)  # the app's 100 tickets this hour are used up
        with pytest.raises(WeComError) as err:
            sdk.agent_ticket()
        assert err.value.errcode == 45009 and sdk.t.stats["backoffs"] == 1
        assert sdk.corp_ticket()  # the company's tickets are counted apart
        with pytest.raises(WeComError) as bad:
            sdk.t.call("ticket/get", query={"type": "jsapi"}, path="/cgi-bin/ticket/get")
        assert bad.value.errcode == 40058


def test_oauth_code_is_single_use() -> None:
    srv = WeComServer(corpid=CORP)
    srv.company.members["guide0001"] = "导购1"
    with running(srv) as base:
        sdk = _sdk(srv, base, Clock())
        code = issue_code(srv, "guide0001")
        assert sdk.user_info(code).userid == "guide0001"
        with pytest.raises(WeComError) as err:
            sdk.user_info(code)
        assert err.value.errcode == 40029
        stranger = sdk.user_info(issue_code(srv, None))
        assert stranger.userid == "" and stranger.openid.startswith("o")
