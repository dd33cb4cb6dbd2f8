"""WXBizMsgCrypt: WeCom's callback encryption (AES-256-CBC, PKCS#7 to 32 bytes, SHA-1 signature).

Plaintext = 16 random bytes ‖ 4-byte big-endian length ‖ msg ‖ receiveid; IV = first 16 bytes of the AES key;
``msg_signature = sha1(''.join(sorted([token, timestamp, nonce, encrypt])))``.  See docs/wecom.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from siyu.errors import SiyuError

BLOCK = 32  # WeCom pads to 32 bytes, not to the AES block size
_ENCRYPT_RE = re.compile(rb"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>|<Encrypt>([^<]*)</Encrypt>", re.S)


class WeComCryptoError(SiyuError):
    """A callback that cannot be trusted: ``reason`` is a short code (signature, receiveid, padding, ...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, field=reason)
        self.reason = reason


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """WeCom's msg_signature: SHA-1 hex of the four strings sorted and joined."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def decode_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey."""
    if len(encoding_aes_key) != 43:
        raise WeComCryptoError(
            "key",
            f"EncodingAESKey must be 43 characters (got {len(encoding_aes_key)}); copy it again from the WeCom "
            "admin console (应用管理 → 接收消息 → 设置API接收)",
        )
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as err:
        raise WeComCryptoError("key", f"EncodingAESKey is not base64 ({err}); copy it again") from err
    if len(key) != 32:
        raise WeComCryptoError("key", "EncodingAESKey does not decode to 32 bytes; copy it again")
    return key


def pad(data: bytes) -> bytes:
    """PKCS#7 to a multiple of 32 bytes (pad values 1..32)."""
    n = BLOCK - len(data) % BLOCK
    return data + bytes([n]) * n


def unpad(data: bytes) -> bytes:
    """Remove PKCS#7 padding (1..32), rejecting anything else."""
    n = data[-1] if data else 0
    if not 1 <= n <= BLOCK or len(data) < n or data[-n:] != bytes([n]) * n:
        raise WeComCryptoError("padding", "bad padding: the message was not encrypted with this EncodingAESKey")
    return data[:-n]


@dataclass(frozen=True)
class Encrypted:
    """An encrypted reply: the fields of ``<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>``."""

    encrypt: str
    msg_signature: str
    timestamp: str
    nonce: str

    def xml(self) -> str:
        return (
            f"<xml><Encrypt><![CDATA[{self.encrypt}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{self.msg_signature}]]></MsgSignature>"
            f"<TimeStamp>{self.timestamp}</TimeStamp><Nonce><![CDATA[{self.nonce}]]></Nonce></xml>"
        )


class WXBizMsgCrypt:
    """Verify, decrypt and encrypt WeCom callback messages for one (token, EncodingAESKey, receiveid)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not token:
            raise WeComCryptoError("token", "callback token is empty; set it to the Token shown in the WeCom console")
        self.token = token
        self.key = decode_key(encoding_aes_key)
        self.receive_id = receive_id

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def check_signature(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Raise unless ``msg_signature`` signs (token, timestamp, nonce, encrypt)."""
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected, (msg_signature or "").lower()):
            raise WeComCryptoError("signature", "msg_signature does not match: forged request or wrong Token")

    def decrypt(self, encrypt: str) -> bytes:
        """Decrypt base64 ``encrypt``; check padding, length and receiveid; return the message bytes."""
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as err:
            raise WeComCryptoError("encrypt", f"Encrypt is not base64 ({err})") from err
        if not raw or len(raw) % 16:
            raise WeComCryptoError("encrypt", f"Encrypt is {len(raw)} bytes, not a multiple of the AES block (16)")
        dec = self._cipher().decryptor()
        plain = unpad(dec.update(raw) + dec.finalize())
        if len(plain) < 20:
            raise WeComCryptoError("length", "decrypted message is too short to hold its length prefix")
        (n,) = struct.unpack(">I", plain[16:20])
        if 20 + n > len(plain):
            raise WeComCryptoError("length", f"length prefix {n} exceeds the decrypted message")
        msg, rid = plain[20 : 20 + n], plain[20 + n :]
        if rid.decode("utf-8", "replace") != self.receive_id:
            raise WeComCryptoError(
                "receiveid", f"receiveid {rid.decode('utf-8', 'replace')!r} is not this corp ({self.receive_id!r})"
            )
        return msg

    def encrypt(self, msg: bytes | str, random16: bytes | None = None) -> str:
        """Encrypt ``msg`` for this receiveid; returns base64 text."""
        body = msg.encode() if isinstance(msg, str) else msg
        rand = random16 if random16 is not None else os.urandom(16)
        plain = pad(rand + struct.pack(">I", len(body)) + body + self.receive_id.encode())
        enc = self._cipher().encryptor()
        return base64.b64encode(enc.update(plain) + enc.finalize()).decode()

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """URL verification: check the signature over ``echostr`` and return its plaintext (answer it bare)."""
        self.check_signature(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr).decode()

    def decrypt_msg(self, body: bytes | str, msg_signature: str, timestamp: str, nonce: str) -> bytes:
        """A POST callback: take ``Encrypt`` from the XML body, check the signature, decrypt; returns the XML."""
        encrypt = extract_encrypt(body)
        self.check_signature(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def encrypt_msg(self, reply: bytes | str, nonce: str, timestamp: str | None = None) -> Encrypted:
        """Encrypt and sign a reply (or a callback, for the local server)."""
        ts = timestamp or str(int(time.time()))
        enc = self.encrypt(reply)
        return Encrypted(enc, signature(self.token, ts, nonce, enc), ts, nonce)


def extract_encrypt(body: bytes | str) -> str:
    """The ``Encrypt`` element of a callback body (CDATA or plain)."""
    raw = body.encode() if isinstance(body, str) else body
    m = _ENCRYPT_RE.search(raw)
    if m is None:
        raise WeComCryptoError("body", "callback body has no <Encrypt> element")
    return (m.group(1) if m.group(1) is not None else m.group(2)).decode().strip()
