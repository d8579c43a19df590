"""Backup files: their names, the folder they live in, the archive layout and its manifest.

One backup is one tar file (gzip-compressed by default; sealed whole with TOWNSQUARE_BACKUP_KEY
when it is set, see encryption.py), `manifest.json` first, then:

  db/<table>.copy          the table's rows (PostgreSQL's text COPY format)
  objects/<attachment id>  an attachment's bytes as the object store returns them
  memories/<agent id>.json an agent's memories: ids, documents, metadatas (+ .npy: float32 embeddings)
  config/settings.json     the non-secret settings; config/*.yaml the society and routing files

The manifest lists every member with its SHA-256 and size, so a damaged or altered archive is
refused before anything is restored. Next to each archive, `<name>.json` (owner-only, like the
archive) keeps what a listing shows, so that listing the folder never decompresses or decrypts an
archive: name, kind, dates, versions, schema revision, counts and the content digest's hash (plus
the key id beside an encrypted archive). Nothing else: no member list, no attachment's storage
key, type, size or hash (a file's hash would confirm a guess of its content). A restore and a
verify read only the manifest inside the archive, never the sidecar.

Archives are written and read as streams (tarfile's `w|` / `r|` modes): an encrypted one is
sealed and checked chunk by chunk, and no archive is ever held in memory."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import secrets
import shutil
import tarfile
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Iterator

import orjson

from ..core.config import Settings
from ..core.secretbox import UploadCipher
from . import encryption
from .errors import BackupDamaged, BackupIncompatible, BackupKeyMissing, UnknownBackup, invalid_name

FORMAT, VERSION = "townsquare-backup", 1
MANIFEST = "manifest.json"
NAME_RE = re.compile(r"^townsquare-(\d{8}T\d{6}Z)-(manual|scheduled)-[0-9a-f]{6}\.tar(\.gz)?(\.enc)?$")
MEMBER_RE = re.compile(r"^(db/[a-z_][a-z0-9_]{0,62}\.copy|objects/\d{1,20}|memories/(?:society-)?\d{1,20}\.(json|npy)"
                       r"|config/[A-Za-z0-9_][A-Za-z0-9._-]{0,120})$")
CHUNK = 1 << 20


def new_name(kind: str, compress: bool, now: datetime | None = None, encrypted: bool = False) -> str:
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    suffix = f".tar{'.gz' if compress else ''}{encryption.SUFFIX if encrypted else ''}"
    return f"townsquare-{moment:%Y%m%dT%H%M%SZ}-{kind}-{secrets.token_hex(3)}{suffix}"


def check_name(name: str) -> str:
    """Only names this module makes: never a path, never another file of the folder."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise invalid_name()
    return name


def created_at(name: str) -> datetime:
    match = NAME_RE.fullmatch(name)
    assert match is not None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def kind_of(name: str) -> str:
    match = NAME_RE.fullmatch(name)
    assert match is not None
    return match.group(2)


def path_of(settings: Settings, name: str) -> Path:
    path = settings.resolved_backup_dir() / check_name(name)
    if not path.is_file():
        raise UnknownBackup()
    return path


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


PUBLIC_FIELDS = ("format", "version", "name", "kind", "created_at", "townsquare", "schema_revision", "counts")


def public_manifest(manifest: dict[str, Any], key_id: str | None) -> dict[str, Any]:
    """The sidecar copy: only what a listing shows (`summary`), whether or not the archive is
    encrypted, and beside an encrypted one the id of the key that opens it."""
    listing = {**{k: manifest.get(k) for k in PUBLIC_FIELDS}, "digest": {"sha256": (manifest.get("digest") or {}).get("sha256")}}
    if key_id is None:
        return {**listing, "encrypted": False}
    return {**listing, "encrypted": True, "key_id": key_id, "cipher": "AES-256-GCM, 64 KiB chunks (Townsquare sealed stream v1)"}


def write_archive(staging: Path, manifest: dict[str, Any], target: Path, compress: bool, cipher: UploadCipher | None = None,
                  key_id: str | None = None) -> None:
    """Hashes every staged member into the manifest, then writes the tar (manifest first) under
    a temporary name and renames it: a backup file is complete or absent. With `cipher`, the
    (compressed) tar stream is sealed as it is written; `key_id` names its key in the sidecar."""
    members = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
    manifest["members"] = {m: {"sha256": sha256_file(staging / m), "size": (staging / m).stat().st_size} for m in members}
    body = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    part = target.with_name(f".{target.name}.part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds password hashes: the owner's only
    with os.fdopen(fd, "wb") as raw:
        sealed = cipher.writer(raw.write) if cipher is not None else None
        sink: Any = sealed or raw
        packed = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6) if compress else None
        with tarfile.open(fileobj=packed or sink, mode="w|") as tar:
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(body), 0o600, int(datetime.now(timezone.utc).timestamp())
            tar.addfile(info, io.BytesIO(body))
            for member in members:
                tar.add(staging / member, arcname=member, recursive=False)
        if packed is not None:
            packed.close()  # (does not close `sink`)
        if sealed is not None:
            sealed.close()  # the last chunk
        raw.flush()
        os.fsync(raw.fileno())
    sidecar_part = sidecar(part)
    side = orjson.dumps(public_manifest(manifest, key_id if cipher is not None else None), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    fd = os.open(sidecar_part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # counts and dates are the owner's too
    with os.fdopen(fd, "wb") as out:
        out.write(side)
    os.replace(sidecar_part, sidecar(target))
    os.replace(part, target)


def _check_manifest(manifest: Any, public: bool = False) -> dict[str, Any]:
    """`public`: a sidecar, which may be the listing-only copy of an encrypted archive's manifest."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupDamaged("The file is not a Townsquare backup")
    if not isinstance(manifest.get("members"), dict) and not (public and isinstance(manifest.get("encrypted"), bool)):
        raise BackupDamaged("The file is not a Townsquare backup")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > VERSION:
        raise BackupIncompatible()
    return manifest


def _open_tar(stream: IO[bytes] | Any) -> tarfile.TarFile:
    """A tar stream (gzip-compressed or not), read once from start to end."""
    return tarfile.open(fileobj=stream, mode="r|*")


def _first_manifest(tar: tarfile.TarFile) -> tuple[tarfile.TarInfo, dict[str, Any]]:
    first = tar.next()
    if first is None or first.name != MANIFEST or not first.isfile():
        raise BackupDamaged()
    f = tar.extractfile(first)
    assert f is not None
    return first, _check_manifest(orjson.loads(f.read()))


def read_manifest(path: Path, settings: Settings | None = None) -> dict[str, Any]:
    """The sidecar copy when present, else the archive's first member (decrypted with the
    configured backup keys: `settings`)."""
    side = sidecar(path)
    if side.is_file():
        try:
            return _check_manifest(orjson.loads(side.read_bytes()), public=True)
        except orjson.JSONDecodeError:
            pass
    try:
        with encryption.plaintext(path, settings) as stream, _open_tar(stream) as tar:
            return _first_manifest(tar)[1]
    except (tarfile.TarError, OSError, EOFError, orjson.JSONDecodeError) as exc:
        raise BackupDamaged() from exc


def extract_verified(path: Path, staging: Path, settings: Settings | None = None) -> dict[str, Any]:
    """Extracts the archive into `staging` (decrypting it with a key of `settings` if it is
    encrypted), checking every member against the manifest (names, sizes, SHA-256); only regular
    files with expected names are written. Returns the manifest. Raises BackupKeyMissing for an
    archive no configured key opens, BackupDamaged for an altered one."""
    try:
        with encryption.plaintext(path, settings) as stream, _open_tar(stream) as tar:
            first, manifest = _first_manifest(tar)
            expected: dict[str, Any] = manifest["members"]
            seen: set[str] = set()
            for member in tar:
                if member is first:
                    continue
                name = member.name
                if not member.isfile() or name not in expected or name in seen or not MEMBER_RE.fullmatch(name):
                    raise BackupDamaged()
                seen.add(name)
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                h, size = hashlib.sha256(), 0
                with target.open("wb") as out:
                    while chunk := source.read(CHUNK):
                        h.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                if h.hexdigest() != expected[name].get("sha256") or size != expected[name].get("size"):
                    raise BackupDamaged()
            if seen != set(expected) or not _references_verified(manifest, seen):
                raise BackupDamaged()
            while stream.read(CHUNK):  # to the end: an encrypted archive's last chunk proves it was not cut short
                pass
    except (tarfile.TarError, OSError, EOFError, orjson.JSONDecodeError) as exc:
        raise BackupDamaged() from exc
    return manifest


def _references_verified(manifest: dict[str, Any], verified: set[str]) -> bool:
    """Every member the restore reads (tables, files, memories, config) is one of the archive's
    verified members: a crafted manifest cannot make it read "/etc/..." or "../..."."""
    try:
        database, config = manifest["database"], manifest["config"]
        named = [t["member"] for t in database["tables"]] + [f["member"] for f in manifest["files"]]
        named += [m[k] for m in [*manifest["memories"], *(manifest.get("shared_memories") or [])] for k in ("member", "embeddings")]
        named += [config["settings"], *config["files"]]
    except (KeyError, TypeError):
        return False
    return all(isinstance(name, str) and name in verified for name in named)


def summary(path: Path, manifest: dict[str, Any] | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """One backup as the API and `backup list` show it (`settings`: the keys to read an encrypted
    archive's manifest when its sidecar is missing)."""
    key_id = encryption.sealing_key_id(path)  # the header says it, whatever the name
    try:
        manifest = manifest or read_manifest(path, settings)
        damaged = False
    except BackupKeyMissing:
        manifest, damaged = {}, False  # intact as far as can be told; which key it needs is shown
    except (BackupDamaged, BackupIncompatible):
        manifest, damaged = {}, True
    return {
        "name": path.name, "kind": kind_of(path.name), "created_at": created_at(path.name).isoformat(),
        "size": path.stat().st_size, "compressed": ".tar.gz" in path.name, "encrypted": key_id is not None, "key_id": key_id,
        "damaged": damaged,
        "schema_revision": manifest.get("schema_revision"), "counts": manifest.get("counts"),
        "digest": (manifest.get("digest") or {}).get("sha256"),
    }


def backups(settings: Settings) -> Iterator[Path]:
    """The folder's backups, newest first (leftovers of interrupted writes are not backups)."""
    folder = settings.resolved_backup_dir()
    found = [p for p in folder.iterdir() if p.is_file() and NAME_RE.fullmatch(p.name)]
    return iter(sorted(found, key=lambda p: (created_at(p.name), p.name), reverse=True))


def list_backups(settings: Settings) -> list[dict[str, Any]]:
    listed = []
    for path in backups(settings):
        try:
            listed.append(summary(path, settings=settings))
        except FileNotFoundError:
            continue  # deleted since the folder was read (a prune, a DELETE): not listed
    return listed


def open_backup(settings: Settings, name: str) -> tuple[IO[bytes], int]:
    """The archive `name` opened for reading, and its size: once open, a concurrent delete
    cannot cut a download short (an open file outlives its unlinking)."""
    try:
        opened = (settings.resolved_backup_dir() / check_name(name)).open("rb")
    except (FileNotFoundError, IsADirectoryError):
        raise UnknownBackup() from None
    return opened, os.fstat(opened.fileno()).st_size


def delete(path: Path) -> None:
    sidecar(path).unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def prune(settings: Settings, keep: int) -> list[str]:
    """Deletes scheduled backups beyond the newest `keep`; manual ones are the administrator's."""
    scheduled = [p for p in backups(settings) if kind_of(p.name) == "scheduled"]
    gone = scheduled[max(0, keep):]
    for path in gone:
        delete(path)
    return [p.name for p in gone]


def due(settings: Settings, now: datetime) -> bool:
    """A scheduled backup is due when none is younger than `backup_every_hours`."""
    if settings.backup_every_hours <= 0:
        return False
    newest = next((p for p in backups(settings) if kind_of(p.name) == "scheduled"), None)
    return newest is None or (now - created_at(newest.name)).total_seconds() >= settings.backup_every_hours * 3600


def staging_dir(settings: Settings, purpose: str) -> Path:
    path = settings.resolved_backup_dir() / f".{purpose}-{secrets.token_hex(6)}"
    path.mkdir(mode=0o700)
    return path


def remove_staging(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
