"""`townsquare backup create | list | verify | restore | delete | prune` (platform/ops/backup.py).

`restore` is meant for a stopped stack: it replaces the database, the files, the memories and
the instance's Redis keys, which running servers and workers hold state about. With
TOWNSQUARE_BACKUP_KEY set, `create` writes an encrypted archive (`.enc`) and `verify`/`restore`
open one with any of its keys; a failure (no matching key, altered archive) exits with 1."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

backup_app = typer.Typer(help="Backups of the whole installation (database, files, memories, configuration).", no_args_is_help=True)


def _with_installation(fn: Any) -> Any:
    """Runs `fn(installation)` against the configured (or embedded) services."""
    from ..ops.backup import Installation
    from .session import on_platform

    return on_platform(lambda platform: fn(Installation.of(platform)))


def _source(name_or_path: str) -> Path:
    """A backup of the folder by name, or any archive by path."""
    from ..core.config import get_settings
    from ..ops import archive
    from ..ops.errors import UnknownBackup

    if archive.NAME_RE.fullmatch(name_or_path):
        try:
            return archive.path_of(get_settings(), name_or_path)
        except UnknownBackup:
            pass
    path = Path(name_or_path)
    if not path.is_file():
        raise typer.BadParameter(f"no backup {name_or_path!r} (a name from `townsquare backup list` or a file)")
    return path.resolve()


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@backup_app.command("create")
def create(compress: Annotated[bool | None, typer.Option("--compress/--no-compress",
                                                         help="gzip the archive (default TOWNSQUARE_BACKUP_COMPRESS).")] = None) -> None:
    """Back up now into the backup folder and print the backup's name."""
    from ..core.errors import TownsquareError
    from ..ops.backup import create_backup

    try:
        made = _with_installation(lambda inst: create_backup(inst, kind="manual", compress=compress))
    except TownsquareError as exc:
        raise _fail(exc) from exc
    counts = made["counts"]
    typer.echo(f"{made['name']}  {made['size']} bytes  messages={counts['messages']} files={counts['files']} "
               f"memories={counts['memories']}  digest={made['digest']}  "
               + (f"encrypted (key {made['key_id']})" if made["encrypted"] else "NOT encrypted (TOWNSQUARE_BACKUP_KEY unset)"))


@backup_app.command("list")
def list_() -> None:
    """The backups of the folder, newest first."""
    from ..core.config import get_settings
    from ..ops.archive import list_backups

    for b in list_backups(get_settings()):
        counts = b["counts"] or {}
        typer.echo(f"{b['name']}  {b['size']:>12} bytes  {'DAMAGED' if b['damaged'] else 'ok':<7} "
                   f"{'encrypted key=' + b['key_id'] if b['encrypted'] else 'plaintext':<30} "
                   f"messages={counts.get('messages', '?')} files={counts.get('files', '?')} memories={counts.get('memories', '?')}")


@backup_app.command("verify")
def verify(backup: str, live: Annotated[bool, typer.Option(help="Also compare its content digest with this installation's.")] = False) -> None:
    """Check an archive's members against its manifest (and, with --live, the installation's content)."""
    from ..core.config import get_settings
    from ..core.errors import TownsquareError
    from ..ops.backup import verify_backup

    path = _source(backup)
    try:
        if live:
            result = _with_installation(lambda inst: verify_backup(inst, path, live=True))
        else:
            result = asyncio.run(verify_backup(None, path, settings=get_settings()))
    except TownsquareError as exc:
        raise _fail(exc) from exc
    typer.echo(f"{result['name']}: intact{' (decrypted)' if result['encrypted'] else ''}, digest {result['digest']['sha256']}")
    if live:
        typer.echo(f"live digest {result['live_digest']['sha256']}: {'matches' if result['digest_matches'] else 'DIFFERS'}")
        if not result["digest_matches"]:
            raise typer.Exit(2)


@backup_app.command("restore")
def restore(backup: str,
            force: Annotated[bool, typer.Option(help="Wipe an installation that has content first.")] = False,
            yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False) -> None:
    """Restore a backup (a name or an archive path) into this installation; stop the stack first."""
    from ..core.errors import TownsquareError
    from ..ops.backup import restore_backup

    path = _source(backup)
    if not yes:
        typer.confirm(f"Replace this installation's content with {path.name}{' (wiping it first)' if force else ''}?", abort=True)
    try:
        result = _with_installation(lambda inst: restore_backup(inst, path, force=force))
    except TownsquareError as exc:
        raise _fail(exc) from exc
    counts = result["counts"]
    typer.echo(f"restored {result['name']}: messages={counts['messages']} files={counts['files']} memories={counts['memories']}\n"
               f"  content digest {result['digest']['sha256']}: {'matches the backup' if result['digest_matches'] else 'DIFFERS from the backup'}\n"
               f"  event stream continues after position {result['event_position']}\n"
               f"  agent tokens re-issued: {result['agent_tokens_reissued']}\n"
               f"  the backup's configuration (not applied): {result['config_dir']}")
    if not result["digest_matches"]:
        raise typer.Exit(2)


@backup_app.command("delete")
def delete(name: str) -> None:
    """Delete a backup of the folder."""
    from ..core.config import get_settings
    from ..core.errors import TownsquareError
    from ..ops import archive

    try:
        archive.delete(archive.path_of(get_settings(), name))
    except TownsquareError as exc:
        raise _fail(exc) from exc
    typer.echo("deleted")


@backup_app.command("prune")
def prune(keep: Annotated[int | None, typer.Option(min=0, help="Scheduled backups to keep (default TOWNSQUARE_BACKUP_KEEP).")] = None) -> None:
    """Delete scheduled backups beyond the newest KEEP (manual backups are kept)."""
    from ..core.config import get_settings
    from ..ops import archive

    settings = get_settings()
    for name in archive.prune(settings, settings.backup_keep if keep is None else keep):
        typer.echo(f"deleted {name}")
