"""Emit callbacks as WeCom does: event XML, encrypted (WXBizMsgCrypt), signed, POSTed to the callback URL."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from siyu.connectors.wecom.crypto import WXBizMsgCrypt


def event_xml(fields: dict[str, Any]) -> str:
    """``<xml>`` with one element per field (strings in CDATA, numbers bare), in the given order."""
    parts = []
    for k, v in fields.items():
        if v is None:
            continue
        parts.append(f"<{k}>{v}</{k}>" if isinstance(v, int) else f"<{k}><![CDATA[{v}]]></{k}>")
    return "<xml>" + "".join(parts) + "</xml>"


@dataclass
class Emitter:
    """Where and how the company's callbacks go (URL, Token, EncodingAESKey, CorpID, AgentID)."""

    url: str
    token: str
    aes_key: str
    corpid: str
    agent_id: str = "2000003"

    def envelope(self, fields: dict[str, Any], timestamp: str, nonce: str | None = None) -> tuple[str, dict[str, str]]:
        """The POST body and query of one callback."""
        crypt = WXBizMsgCrypt(self.token, self.aes_key, self.corpid)
        enc = crypt.encrypt_msg(event_xml(fields), nonce or secrets.token_hex(8), timestamp)
        body = (
            f"<xml><ToUserName><![CDATA[{self.corpid}]]></ToUserName><Encrypt><![CDATA[{enc.encrypt}]]></Encrypt>"
            f"<AgentID><![CDATA[{self.agent_id}]]></AgentID></xml>"
        )
        return body, {"msg_signature": enc.msg_signature, "timestamp": enc.timestamp, "nonce": enc.nonce}

    def post(self, body: str, query: dict[str, str]) -> httpx.Response:
        return httpx.post(self.url, params=query, content=body.encode(), timeout=5)

    def send(self, fields: dict[str, Any], timestamp: str) -> httpx.Response:
        body, query = self.envelope(fields, timestamp)
        return self.post(body, query)

    def verify_url(self) -> httpx.Response:
        """What WeCom does when the admin saves the callback URL: GET with an encrypted echostr."""
        crypt = WXBizMsgCrypt(self.token, self.aes_key, self.corpid)
        echo = str(secrets.randbelow(10**19))
        enc = crypt.encrypt_msg(echo, secrets.token_hex(8))
        r = httpx.get(
            self.url,
            params={
                "msg_signature": enc.msg_signature,
                "timestamp": enc.timestamp,
                "nonce": enc.nonce,
                "echostr": enc.encrypt,
            },
            timeout=5,
        )
        r.echo = echo  # type: ignore[attr-defined]
        return r
