"""Encryption at rest.

- The few secrets the server must read back (agents' bot tokens: the workers act as the agents
  through the public API, so they need the token itself, not a hash): Fernet, `seal`/`unseal`.
- Uploaded files: AES-256-GCM in chunks (`UploadCipher`), so a file is encrypted and checked
  piece by piece without a second copy of it in memory, and a cut, reordered or altered chunk is
  detected.

Keys come from the configuration (TOWNSQUARE_SECRET_KEY, TOWNSQUARE_UPLOAD_KEY, or their
`_FILE` forms) or, when unset, from a key file made once in the data folder.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import struct
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .config import Settings


@lru_cache(maxsize=8)
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode())


def _key_file(data_dir: Path, name: str = "secret.key", make: Callable[[], bytes] = Fernet.generate_key) -> str:
    path = data_dir / name
    if not path.exists():
        # written whole under a private name, then linked into place: two processes starting
        # together agree on one key, and neither can read a key file that is still empty
        tmp = data_dir / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(make())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def secret_box(settings: Settings) -> Fernet:
    return _fernet(settings.secret_key or _key_file(settings.resolved_data_dir()))


def seal(settings: Settings, plaintext: str) -> bytes:
    return secret_box(settings).encrypt(plaintext.encode())


def unseal(settings: Settings, ciphertext: bytes) -> str:
    return secret_box(settings).decrypt(bytes(ciphertext)).decode()


# --- uploads -----------------------------------------------------------------------------------
#
# Layout of an encrypted object (version 1):
#   header  = MAGIC (8) | version (1) | log2 of the chunk size (1) | key id (8) | nonce prefix (7)
#   chunks  = AES-256-GCM(chunk) with its 16-byte tag, each chunk CHUNK bytes of plaintext but the last
# The nonce of chunk i is prefix | i (4 bytes) | 1 if last else 0, and every chunk's associated
# data is the header: chunks cannot be reordered, dropped, cut off at the end, or moved to
# another object or header (the STREAM construction of Hoang, Reyhanitabar, Rogaway, Vizár).
# An object that does not start with MAGIC is a file stored before encryption existed: it is
# returned as it is, so an upgrade loses nothing.

MAGIC = b"\x89TSENC\r\n"  # non-ASCII first byte and CR LF, as PNG's signature: no text file starts so
_VERSION = 1
_HEADER = struct.Struct(">8sBB8s7s")
HEADER_SIZE = _HEADER.size
CHUNK_LOG2 = 16
CHUNK = 1 << CHUNK_LOG2  # 64 KiB of plaintext per chunk
TAG = 16


class SealBroken(ValueError):
    """An encrypted object that fails its check: altered, cut short, or sealed with a key we do not have."""


def parse_key(text: str) -> bytes:
    """A 32-byte key in (URL-safe or standard) base64."""
    raw = text.strip()
    try:
        key = base64.urlsafe_b64decode(raw.replace("+", "-").replace("/", "_") + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ValueError("an upload key must be 32 random bytes in base64 "
                         "(python -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')")
    return key


def new_key_text() -> bytes:
    return base64.urlsafe_b64encode(secrets.token_bytes(32))


def key_id(key: bytes) -> bytes:
    """Names a key in each object's header without revealing it (picks the key on rotation)."""
    return hashlib.sha256(b"townsquare upload key id\0" + key).digest()[:8]


def sealed_size(plain_size: int) -> int:
    chunks = max(1, -(-plain_size // CHUNK))
    return HEADER_SIZE + plain_size + chunks * TAG


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _read_exact(read: Callable[[int], bytes], n: int) -> bytes:
    """Up to `n` bytes; fewer only at the end (a socket's read may return less than asked)."""
    parts, got = [], 0
    while got < n:
        part = read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class UploadCipher:
    """Seals with the first key; opens with any of them (older keys stay readable after a rotation)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("no upload key")
        self._current = keys[0]
        self._by_id = {key_id(k): AESGCM(k) for k in keys}

    def seal(self, data: bytes | memoryview) -> Iterator[bytes]:
        """The encrypted object, piece by piece (header first); `sealed_size(len(data))` bytes in all."""
        view = memoryview(data)
        prefix = secrets.token_bytes(7)
        header = _HEADER.pack(MAGIC, _VERSION, CHUNK_LOG2, key_id(self._current), prefix)
        aead = self._by_id[key_id(self._current)]
        yield header
        count = max(1, -(-len(view) // CHUNK))
        for i in range(count):
            yield aead.encrypt(_nonce(prefix, i, i == count - 1), view[i * CHUNK:(i + 1) * CHUNK], header)

    def writer(self, write: Callable[[bytes], object]) -> "SealingWriter":
        """A file-like sink that seals what is written to it into `write`, in the same format as
        `seal`, without holding more than two chunks: for streams whose size is not known ahead
        (a backup archive being written). `close()` writes the last chunk."""
        return SealingWriter(self._current, self._by_id[key_id(self._current)], write)

    def open(self, read: Callable[[int], bytes]) -> Iterator[bytes]:
        """The plaintext of an object read through `read(n)`, chunk by chunk, each one checked
        before it is handed out; raises SealBroken on the first chunk that fails. An object
        without the header (stored before encryption) comes back unchanged."""
        head = _read_exact(read, HEADER_SIZE)
        if not head.startswith(MAGIC):
            yield head
            while block := read(CHUNK):
                yield block
            return
        if len(head) < HEADER_SIZE:
            raise SealBroken("encrypted object cut short in its header")
        _, version, chunk_log2, kid, prefix = _HEADER.unpack(head)
        if version != _VERSION or chunk_log2 != CHUNK_LOG2:
            raise SealBroken(f"unknown encrypted object format {version}/{chunk_log2}")
        aead = self._by_id.get(kid)
        if aead is None:
            raise SealBroken("object encrypted with an upload key that is not configured")
        size = CHUNK + TAG
        index, block = 0, _read_exact(read, size)
        while True:
            following = _read_exact(read, size) if len(block) == size else b""
            last = not following
            try:
                yield aead.decrypt(_nonce(prefix, index, last), block, head)
            except InvalidTag:
                raise SealBroken(f"encrypted object fails its check at chunk {index}") from None
            if last:
                return
            index, block = index + 1, following


class SealingWriter:
    """See `UploadCipher.writer`. A chunk is sealed only once the next byte arrives (or at
    close): the last chunk's nonce says it is the last."""

    def __init__(self, key: bytes, aead: AESGCM, write: Callable[[bytes], object]) -> None:
        self._aead, self._write, self._index, self._closed = aead, write, 0, False
        self._prefix = secrets.token_bytes(7)
        self._header = _HEADER.pack(MAGIC, _VERSION, CHUNK_LOG2, key_id(key), self._prefix)
        self._pending = bytearray()
        write(self._header)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("write to a closed SealingWriter")
        self._pending += data
        while len(self._pending) > CHUNK:  # strictly more: a full chunk may yet be the last one
            self._seal(bytes(self._pending[:CHUNK]), last=False)
            del self._pending[:CHUNK]
        return len(data)

    def close(self) -> None:
        if not self._closed:
            self._seal(bytes(self._pending), last=True)
            self._pending.clear()
            self._closed = True

    def _seal(self, chunk: bytes, last: bool) -> None:
        self._write(self._aead.encrypt(_nonce(self._prefix, self._index, last), chunk, self._header))
        self._index += 1


def sealed_key_id(head: bytes) -> bytes | None:
    """The key id named by an encrypted object's first HEADER_SIZE bytes; None if they are not
    such a header (a plaintext object)."""
    if len(head) < HEADER_SIZE or not head.startswith(MAGIC):
        return None
    return _HEADER.unpack(head[:HEADER_SIZE])[3]


def upload_keys(settings: Settings) -> list[bytes]:
    """TOWNSQUARE_UPLOAD_KEY (comma-separated: the first seals, every one opens), else the data
    folder's upload.key, made once."""
    configured = settings.upload_key or _key_file(settings.resolved_data_dir(), "upload.key", new_key_text)
    return [parse_key(part) for part in configured.split(",") if part.strip()]


def upload_cipher(settings: Settings) -> UploadCipher:
    return UploadCipher(upload_keys(settings))
