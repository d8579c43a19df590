"""Attachments: bytes go to the object store before the message is written; the type is
sniffed from the bytes (never taken from the client) and file names are made safe."""

from __future__ import annotations

import codecs
import contextlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import filetype
from sqlalchemy import text

from ..core.errors import AttachmentCorrupt, PayloadTooLarge, UnknownAttachment
from ..core.permissions import P
from ..core.snowflake import new_id
from ..services.objectstore import SealBroken
from .access import channel_access
from .context import Platform

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Types a browser may render inline; everything else is served as a download.
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "video/mp4", "video/webm", "audio/mpeg",
                "audio/ogg", "audio/wav", "text/plain; charset=utf-8", "application/pdf"}


def safe_filename(name: str | None) -> str:
    """Keeps only the last path component, in ASCII letters, digits, '.', '_' and '-'."""
    raw = (name or "").replace("\\", "/").split("/")[-1]
    replaced = _UNSAFE.sub("_", unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode())
    cleaned = replaced.strip("._")
    if not cleaned:
        return "unknown"
    if replaced.lstrip("_").startswith(".") and not raw.startswith("."):
        # the whole stem was non-ASCII ("日本語.png"): keep the extension, not a file named "png"
        cleaned = "unknown." + cleaned
    if len(cleaned) > 100:
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = (stem[: 100 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else cleaned[:100]
    return cleaned


def sniff_content_type(data: bytes) -> str:
    kind = filetype.guess(data[:8192])
    if kind is not None:
        return kind.mime
    sample = data[:65536]
    try:
        # not final when the sample is cut: a multi-byte character split at its end is still
        # text (slicing a few bytes off instead can cut the character before it)
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=len(sample) == len(data))
        return "text/plain; charset=utf-8"
    except UnicodeDecodeError:
        return "application/octet-stream"


_MAX_DIMENSION = (1 << 31) - 1  # PNG's own limit, and the attachments columns are int4


def _image_size(data: bytes, content_type: str) -> tuple[int | None, int | None]:
    """Width and height from PNG and GIF headers (cheap, no image library). The bytes are the
    client's: a header that is not there or out of range gives no size, never an error."""
    width = height = 0
    if content_type == "image/png" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    elif content_type == "image/gif" and len(data) >= 10:
        width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if 0 < width <= _MAX_DIMENSION and 0 < height <= _MAX_DIMENSION:
        return width, height
    return None, None


@dataclass
class Upload:
    filename: str | None
    data: bytes
    description: str | None = None


async def store_uploads(platform: Platform, channel_id: int, uploads: list[Upload]) -> list[dict[str, Any]]:
    """Writes the files and returns attachment rows for `NewMessage.attachments`; the caller
    removes them again (`Platform.delete_objects`) if the message is not written."""
    # every size first: a too large third file must not leave the first two behind
    for up in uploads:
        if len(up.data) > platform.settings.max_upload_bytes:
            raise PayloadTooLarge(f"File {safe_filename(up.filename)} is larger than {platform.settings.max_upload_bytes} bytes")
    out: list[dict[str, Any]] = []
    try:
        for up in uploads:
            attachment_id = new_id()
            filename = safe_filename(up.filename)
            content_type = sniff_content_type(up.data)
            key = f"attachments/{channel_id}/{attachment_id}"
            await platform.store.put(key, up.data, content_type)
            width, height = _image_size(up.data, content_type)
            out.append({"id": attachment_id, "filename": filename, "description": (up.description or None) and up.description[:1024],
                        "content_type": content_type, "size": len(up.data), "storage_key": key, "width": width, "height": height})
    except Exception:
        for stored in out:  # best effort: the store's own error is the one to report
            with contextlib.suppress(Exception):
                await platform.store.delete(stored["storage_key"])
        raise
    return out


async def open_attachment(platform: Platform, user_id: int, channel_id: int, attachment_id: int, filename: str) -> tuple[Any, bytes]:
    """The row and bytes of an attachment, for a user who can read its channel now."""
    async with platform.read() as conn:
        access = await channel_access(conn, user_id, channel_id)
        access.require(int(P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY))
        row = (await conn.execute(text("SELECT * FROM attachments WHERE id = :id AND channel_id = :cid"),
                                  {"id": attachment_id, "cid": channel_id})).first()
    if row is None or row.filename != filename:
        raise UnknownAttachment()
    try:
        data = await platform.store.get(row.storage_key)
    except FileNotFoundError:
        # the message (and its object) was deleted since the row was read
        raise UnknownAttachment() from None
    except SealBroken as exc:
        log.warning("attachment failed its integrity check", extra={"storage_key": row.storage_key, "reason": str(exc)})
        raise AttachmentCorrupt() from None
    return row, data
