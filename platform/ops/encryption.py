"""Whole-archive encryption of backups (TOWNSQUARE_BACKUP_KEY), in the format of encrypted uploads
(core/secretbox.py: chunked AES-256-GCM, key id in the header): the archive is sealed as it is
written and checked chunk by chunk as it is read, never held in memory. A comma-separated list
of keys allows a rotation: the first seals, every one opens.

Why no default key file in the data folder (as uploads have): a backup is for the day the data
folder is lost, and a key kept there would be lost with it, making every backup unreadable. So
without a key the archive is plaintext (mode 0600) and each backup logs a warning."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ..core.config import Settings
from ..core.secretbox import HEADER_SIZE, SealBroken, UploadCipher, key_id, parse_key, sealed_key_id
from .errors import BackupDamaged, BackupKeyInvalid, BackupKeyMissing

SUFFIX = ".enc"


def backup_keys(settings: Settings) -> list[bytes]:
    if not settings.backup_key:
        return []
    try:
        return [parse_key(part) for part in settings.backup_key.split(",") if part.strip()]
    except ValueError as exc:
        raise BackupKeyInvalid() from exc


def backup_cipher(settings: Settings) -> UploadCipher | None:
    """None when no backup key is configured (plaintext archives)."""
    keys = backup_keys(settings)
    return UploadCipher(keys) if keys else None


def fingerprint(key: bytes) -> str:
    """The key id an archive's header names, in hex: tells which key a backup needs, reveals nothing of it."""
    return key_id(key).hex()


def sealing_key_id(path: Path) -> str | None:
    """The key id of an encrypted archive (its header is readable without the key); None for a plaintext one."""
    with path.open("rb") as f:
        kid = sealed_key_id(f.read(HEADER_SIZE))
    return None if kid is None else kid.hex()


class _OpenedReader:
    """A read-only file object over the checked plaintext chunks of an encrypted archive (what tarfile's stream mode reads)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buffer = chunks, bytearray()

    def read(self, size: int = -1) -> bytes:
        try:
            while size < 0 or len(self._buffer) < size:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._buffer += chunk
        except SealBroken as exc:
            raise BackupDamaged("The backup archive fails its integrity check (altered or cut short)") from exc
        size = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


@contextmanager
def plaintext(path: Path, settings: Settings | None) -> Iterator[IO[bytes] | _OpenedReader]:
    """The archive's plaintext stream: the file itself, or its decryption with a configured key
    (an encrypted archive is told by its header, whatever its name)."""
    with path.open("rb") as f:
        kid = sealed_key_id(f.read(HEADER_SIZE))
        f.seek(0)
        if kid is None:
            yield f
            return
        keys = backup_keys(settings) if settings is not None else []
        if kid not in {key_id(k) for k in keys}:
            raise BackupKeyMissing(f"The backup is encrypted with key {kid.hex()}, which is not among the configured "
                                   f"TOWNSQUARE_BACKUP_KEY keys ({', '.join(map(fingerprint, keys)) or 'none is set'})")
        yield _OpenedReader(UploadCipher(keys).open(f.read))
