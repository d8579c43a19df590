"""Backups for the dashboard (`/api/v10/townsquare/backups`, instance administrators only): list,
create (synchronous: 201 with the new backup), download (the archive, streamed), restore, delete.
Every change and every download is audit-logged (no guild: the instance's log).

Restore over the API (`POST /{name}/restore` with `{"confirm": "<name>"}`) goes into an
installation without content (a fresh one: its accounts alone), or replaces the content when
`"replace": true` is given too. This server's event publisher and gateway are restarted after it
(connected clients are told to reconnect and identify again); agent workers rejoin the event
stream by themselves. With several server replicas, restore with the CLI, the stack stopped.

Encrypted archives (TOWNSQUARE_BACKUP_KEY): the listing says `encrypted` and the `key_id` an
archive needs (read from its header: no key is needed to list); restore opens it with this
server's keys (400, 130014 when none matches); a download is the sealed file as it is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from pydantic import Field

from ...actions.agents import require_admin
from ...actions.authcache import AuthCache
from ...actions.context import Platform
from ...actions.users import AuthUser
from ...core.errors import InvalidFormBody
from ...ops import archive
from ...ops.audit import OpsAction
from ...ops.backup import Installation, create_backup, restore_backup
from ..bodies import Body
from ..deps import Me, PlatformDep
from ..strictjson import StrictJSONRoute

router = APIRouter(prefix="/api/v10/townsquare/backups", route_class=StrictJSONRoute)

# loose here (so that a bad name is a 400 in Discord's shape, not a router 422): checked by archive.check_name
BackupName = Annotated[str, PathParam(max_length=200)]


class CreateBody(Body):
    compress: bool | None = None


class RestoreBody(Body):
    confirm: str = Field(max_length=200)  # the backup's name again: a restore replaces everything
    replace: bool = False  # wipe an installation that has content


async def _audit(platform: Platform, me: AuthUser, action: OpsAction, name: str, **options: Any) -> None:
    async with platform.transaction() as tx:
        await tx.audit(guild_id=None, user_id=me.id, action_type=int(action), options={"backup": name, **options})


@router.get("")
async def list_backups(me: Me, platform: PlatformDep) -> list[dict[str, Any]]:
    require_admin(me)
    return archive.list_backups(platform.settings)


@router.post("", status_code=201)
async def create(me: Me, platform: PlatformDep, body: CreateBody | None = None) -> dict[str, Any]:
    require_admin(me)
    made = await create_backup(Installation.of(platform), kind="manual", compress=body.compress if body else None)
    await _audit(platform, me, OpsAction.BACKUP_CREATE, made["name"], size=made["size"])
    return made


@router.get("/{name}")
async def download(name: BackupName, me: Me, platform: PlatformDep) -> StreamingResponse:
    require_admin(me)
    opened, size = archive.open_backup(platform.settings, name)  # before anything else: a prune may delete it meanwhile
    try:
        await _audit(platform, me, OpsAction.BACKUP_DOWNLOAD, name)
    except BaseException:
        opened.close()
        raise
    media = ("application/octet-stream" if name.endswith(".enc")  # sealed: opaque without the key
             else "application/gzip" if name.endswith(".gz") else "application/x-tar")
    # `name` passed archive.check_name: plain ASCII, safe in the header as it is
    return StreamingResponse(_read(opened), media_type=media,
                             headers={"Content-Length": str(size), "Content-Disposition": f'attachment; filename="{name}"'})


async def _read(opened: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(opened.read, archive.CHUNK):
            yield chunk
    finally:
        opened.close()


@router.post("/{name}/restore")
async def restore(name: BackupName, body: RestoreBody, request: Request, me: Me, platform: PlatformDep) -> dict[str, Any]:
    require_admin(me)
    path = archive.path_of(platform.settings, name)
    if body.confirm != path.name:
        raise InvalidFormBody.field("confirm", "BACKUP_CONFIRM_MISMATCH", "Type the backup's name to confirm the restore.")
    result = await restore_backup(Installation.of(platform), path, force=body.replace)
    await _restart_runtime(request, platform)
    await _audit(platform, me, OpsAction.BACKUP_RESTORE, path.name, replace=body.replace, digest_matches=result["digest_matches"])
    return result


@router.delete("/{name}", status_code=204)
async def delete(name: BackupName, me: Me, platform: PlatformDep) -> Response:
    require_admin(me)
    path = archive.path_of(platform.settings, name)
    archive.delete(path)
    await _audit(platform, me, OpsAction.BACKUP_DELETE, path.name)
    return Response(status_code=204)


async def _restart_runtime(request: Request, platform: Platform) -> None:
    """What this process remembers of the replaced content: cached logins, the publisher's last
    position, the gateway's sessions and position."""
    platform.auth_cache = AuthCache()
    await platform.publisher.stop()
    await platform.publisher.start()
    hub = getattr(request.app.state, "hub", None)
    if hub is not None:
        await hub.stop()
        await hub.start()
