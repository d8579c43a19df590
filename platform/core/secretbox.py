"""Encryption at rest for the few secrets the server must read back (agents' bot tokens: the
workers act as the agents through the public API, so they need the token itself, not a hash)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet

from .config import Settings


@lru_cache(maxsize=8)
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode())


def _key_file(data_dir: Path) -> str:
    path = data_dir / "secret.key"
    if not path.exists():
        key = Fernet.generate_key()
        # create-exclusive so that two processes starting together agree on one key
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(key)
    return path.read_text().strip()


def secret_box(settings: Settings) -> Fernet:
    return _fernet(settings.secret_key or _key_file(settings.resolved_data_dir()))


def seal(settings: Settings, plaintext: str) -> bytes:
    return secret_box(settings).encrypt(plaintext.encode())


def unseal(settings: Settings, ciphertext: bytes) -> str:
    return secret_box(settings).decrypt(bytes(ciphertext)).decode()
