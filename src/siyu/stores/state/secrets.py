"""Secrets encrypted at rest in the state database (WeCom secret/token/EncodingAESKey, provider passwords, webhook
signing secrets).

A stored secret is ``enc:v1:<key id>:<Fernet token>`` (AES-128-CBC + HMAC-SHA256). The key comes from
``SIYU_SECRET_KEY`` (HKDF-SHA256 of it) or, when that is left at its development default, from the key file
``<data dir>/secrets.key`` (created with mode 0600 on first use; one Fernet key per line, the first one encrypts).
Older keys that may still decrypt: the other lines of the key file, ``SIYU_SECRET_KEY_PREVIOUS`` (comma-separated
passphrases), and — under ``SIYU_SECRET_KEY`` — the key file, so switching to the environment key keeps working until
``siyu secrets rotate`` re-encrypts everything. A value without the prefix is a legacy plain value (read as is).
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from siyu.config import Settings
from siyu.errors import SiyuError

PREFIX = "enc:v1:"
KEY_FILE = "secrets.key"
DEV_SECRET_KEY = Settings.__dataclass_fields__["secret_key"].default
PREVIOUS_ENV = "SIYU_SECRET_KEY_PREVIOUS"


class SecretKeyError(SiyuError):
    """A stored secret cannot be decrypted with the keys at hand (the key changed or the value was altered)."""


def key_id(key: bytes) -> str:
    """A short public fingerprint of a Fernet key (stored next to each token, so errors can name the key)."""
    return hashlib.sha256(b"siyu-key-id:" + key).hexdigest()[:8]


def derive_key(passphrase: str) -> bytes:
    """The Fernet key of a passphrase such as ``SIYU_SECRET_KEY`` (HKDF-SHA256, fixed salt and context)."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"siyu-state-secrets", info=b"fernet-v1").derive(
        passphrase.encode()
    )
    return base64.urlsafe_b64encode(raw)


def is_sealed(value: object) -> bool:
    """True when ``value`` is an encrypted secret (not a legacy plain one)."""
    return isinstance(value, str) and value.startswith(PREFIX)


@dataclass(frozen=True)
class SecretBox:
    """Encrypts with ``keys[0]``; decrypts with whichever key's id the value names. ``source`` says where the
    primary key came from (for error messages)."""

    keys: tuple[bytes, ...]
    source: str

    @property
    def primary_id(self) -> str:
        return key_id(self.keys[0])

    def seal(self, value: str) -> str:
        """``value`` encrypted with the primary key (an already sealed value or an empty one is returned as is)."""
        if not value or is_sealed(value):
            return value
        return f"{PREFIX}{self.primary_id}:{Fernet(self.keys[0]).encrypt(value.encode()).decode()}"

    def open(self, value: str, what: str = "secret") -> str:
        """The plain text of a stored ``value`` (a legacy plain value is returned unchanged)."""
        if not is_sealed(value):
            return value
        kid, _, token = value.removeprefix(PREFIX).partition(":")
        for key in self.keys:
            if key_id(key) == kid:
                try:
                    return Fernet(key).decrypt(token.encode()).decode()
                except InvalidToken as exc:
                    raise SecretKeyError(
                        f"the stored {what} is damaged (its authentication tag does not match key {kid}); "
                        "enter it again",
                        what,
                    ) from exc
        raise SecretKeyError(
            f"the stored {what} was encrypted with key {kid}, but the key in use is {self.primary_id} ({self.source}) "
            f"and no older key matches: restore the key it was encrypted with (SIYU_SECRET_KEY or the key file), "
            f"or put the old passphrase in {PREVIOUS_ENV} and run `siyu secrets rotate`, or enter the {what} again",
            what,
        )

    def needs_reseal(self, value: object) -> bool:
        """True for a plain value or one sealed with a key other than the primary (what rotation rewrites)."""
        if not isinstance(value, str) or not value:
            return False
        return not value.startswith(f"{PREFIX}{self.primary_id}:")


def key_file(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE


def read_key_file(path: Path) -> list[bytes]:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretKeyError(
            f"the key file {path} can be read by other users (mode {stat.S_IMODE(mode):o}); run `chmod 600 {path}`",
            "secret_key",
        )
    keys = [line.strip().encode() for line in path.read_text().splitlines() if line.strip()]
    for k in keys:
        try:
            Fernet(k)
        except ValueError as exc:
            raise SecretKeyError(f"the key file {path} holds a line that is not a Fernet key", "secret_key") from exc
    if not keys:
        raise SecretKeyError(f"the key file {path} is empty; restore it from a backup", "secret_key")
    return keys


def write_key_file(path: Path, keys: list[bytes], exclusive: bool = False) -> bool:
    """Write ``keys`` (first = primary) to ``path`` with mode 0600, atomically. ``exclusive``: only when no file
    exists yet (returns False when another process created it first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, b"".join(k + b"\n" for k in keys))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if exclusive:
            try:
                os.link(tmp, path)  # atomic, fails when the file exists
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
            tmp = path  # nothing left to remove
        return True
    finally:
        if tmp != path:
            tmp.unlink(missing_ok=True)


def load_box(settings: Settings, env: Mapping[str, str] | None = None, create: bool = True) -> SecretBox:
    """The keys for ``settings``: ``SIYU_SECRET_KEY`` when set (not the dev default), else the data dir's key file
    (created on first use when ``create``)."""
    env = os.environ if env is None else env
    path = key_file(settings)
    previous = [derive_key(p.strip()) for p in env.get(PREVIOUS_ENV, "").split(",") if p.strip()]
    if settings.secret_key and settings.secret_key != DEV_SECRET_KEY:
        file_keys = read_key_file(path) if path.exists() else []
        return SecretBox((derive_key(settings.secret_key), *previous, *file_keys), "SIYU_SECRET_KEY")
    if not path.exists():
        if not create:
            raise SecretKeyError(f"no key file {path} and SIYU_SECRET_KEY is not set", "secret_key")
        write_key_file(path, [Fernet.generate_key()], exclusive=True)
    return SecretBox((*read_key_file(path), *previous), f"key file {path}")
