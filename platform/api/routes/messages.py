"""Messages, reactions, pins, read states, attachments and per-channel search."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError, field_validator
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from ...actions import attachments, messages, reactions, readstates, search
from ...core.errors import InvalidFormBody, InvalidJson, PayloadTooLarge
from ...core.snowflake import MAX_SNOWFLAKE
from ..bodies import Body
from ..deps import Me, OptSnowflakeQuery, PlatformDep, Reason, Snowflake, SnowflakeInt, SnowflakeListQuery
from ..errors import validation_errors
from ..openapi import request_body
from ..responses import FastJSONResponse
from ..strictjson import StrictJSONRoute, check_text, parse_json

router = APIRouter(prefix="/api/v10", route_class=StrictJSONRoute)


class ReferenceBody(Body):
    message_id: SnowflakeInt
    channel_id: SnowflakeInt | None = None
    guild_id: SnowflakeInt | None = None
    fail_if_not_exists: bool = True


class AllowedMentionsBody(Body):
    parse: list[Literal["users", "roles", "everyone"]] = Field(default_factory=list, max_length=3)
    users: list[SnowflakeInt] = Field(default_factory=list, max_length=100)
    roles: list[SnowflakeInt] = Field(default_factory=list, max_length=100)
    replied_user: bool = False


class AttachmentMetaBody(Body):
    id: int | str
    filename: str | None = Field(default=None, max_length=1024)
    description: str | None = Field(default=None, max_length=1024)


class CreateMessageBody(Body):
    content: str = Field(default="", max_length=100_000)  # the real limit is a setting, checked below
    nonce: int | str | None = None
    tts: bool = False
    embeds: list[dict[str, Any]] = Field(default_factory=list, max_length=10)
    embed: dict[str, Any] | None = None
    message_reference: ReferenceBody | None = None
    allowed_mentions: AllowedMentionsBody | None = None
    flags: int = Field(default=0, ge=0, le=1 << 16)
    attachments: list[AttachmentMetaBody] = Field(default_factory=list, max_length=10)

    @field_validator("nonce")
    @classmethod
    def _nonce(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, str) and len(value) > 25:
            raise ValueError("Nonce must be 25 characters or fewer")
        if isinstance(value, int) and not -MAX_SNOWFLAKE <= value <= MAX_SNOWFLAKE:
            raise ValueError("Nonce is out of range")
        return value


class EditMessageBody(Body):
    content: str | None = Field(default=None, max_length=100_000)
    embeds: list[dict[str, Any]] | None = Field(default=None, max_length=10)
    flags: int | None = Field(default=None, ge=0, le=1 << 16)
    allowed_mentions: AllowedMentionsBody | None = None


class BulkDeleteBody(Body):
    messages: list[SnowflakeInt] = Field(max_length=100, json_schema_extra={"minItems": 2})  # 2-100: 50016 otherwise


def check_content(platform: Any, content: str) -> None:
    limit = platform.settings.max_message_length
    if len(content) > limit:
        raise InvalidFormBody.field("content", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _check_embeds(embeds: list[dict[str, Any]]) -> None:
    check_text(embeds, "embeds")  # also bounds the nesting depth
    if len(orjson.dumps(embeds)) > 6000 * 2:
        raise InvalidFormBody.field("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def _parse(model: type[BaseModel], obj: Any) -> Any:
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise InvalidFormBody(errors=validation_errors(list(exc.errors()))) from None


async def _read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return parse_json(raw)
    except orjson.JSONDecodeError:
        raise InvalidJson() from None


async def _read_message_request(request: Request, platform: Any, channel_id: int) -> messages.NewMessage:
    """JSON, or Discord's multipart form: `payload_json` plus `files[n]`."""
    uploads: list[attachments.Upload] = []
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        limit = platform.settings.max_attachments_per_message
        try:
            form = await request.form(max_files=limit, max_fields=limit + 5, max_part_size=platform.settings.max_body_bytes)
        except (PayloadTooLarge, ClientDisconnect):
            raise
        except Exception as exc:  # malformed multipart, too many parts, or a part too large
            if getattr(exc, "status_code", None) == 413 or "maximum size" in str(getattr(exc, "detail", exc)):
                raise PayloadTooLarge() from None
            raise InvalidFormBody.field("files", "FILE_UPLOAD_INVALID", "Malformed multipart body or too many files.") from None
        payload: Any = {}
        if "payload_json" in form:
            value = form["payload_json"]
            try:
                payload = parse_json(value.encode() if isinstance(value, str) else await value.read())
            except orjson.JSONDecodeError:
                raise InvalidJson() from None
        elif "content" in form and isinstance(form["content"], str):
            payload = {"content": form["content"]}
            check_text(payload)
        files = [(k, v) for k, v in form.multi_items() if isinstance(v, UploadFile)]
        body = _parse(CreateMessageBody, payload)
        meta = {str(a.id): a for a in body.attachments}
        for index, (key, file) in enumerate(files):
            data = await file.read(platform.settings.max_upload_bytes + 1)
            slot = key[6:-1] if key.startswith("files[") and key.endswith("]") else str(index)
            info = meta.get(slot)
            uploads.append(attachments.Upload(filename=(info.filename if info and info.filename else file.filename),
                                              data=data, description=info.description if info else None))
        await form.close()
    else:
        body = _parse(CreateMessageBody, await _read_json(request))
    check_content(platform, body.content)
    embeds = body.embeds or ([body.embed] if body.embed else [])
    _check_embeds(embeds)
    return messages.NewMessage(
        content=body.content, nonce=None if body.nonce is None else str(body.nonce), tts=body.tts, embeds=embeds,
        reference=body.message_reference.model_dump() if body.message_reference else None,
        allowed_mentions=body.allowed_mentions.model_dump() if body.allowed_mentions else None,
        flags=body.flags & 4, uploads=uploads,
    )


@router.post("/channels/{channel_id}/messages", openapi_extra=request_body(CreateMessageBody, multipart=True))
async def create_message(channel_id: Snowflake, request: Request, me: Me, platform: PlatformDep) -> FastJSONResponse:
    new = await _read_message_request(request, platform, channel_id)
    return FastJSONResponse(await messages.do_send_message(platform, me, channel_id, new))


@router.get("/channels/{channel_id}/messages")
async def history(channel_id: Snowflake, me: Me, platform: PlatformDep, before: OptSnowflakeQuery = None,
                  after: OptSnowflakeQuery = None, around: OptSnowflakeQuery = None,
                  limit: int = Query(50, ge=1, le=100)) -> FastJSONResponse:
    if sum(x is not None for x in (before, after, around)) > 1:
        raise InvalidFormBody("Only one of before, after and around may be given")
    return FastJSONResponse(await messages.get_history(platform, me.id, channel_id, before=before, after=after, around=around, limit=limit))


@router.get("/channels/{channel_id}/messages/search")
async def search_channel(channel_id: Snowflake, me: Me, platform: PlatformDep, content: str | None = Query(None, max_length=1024),
                         author_id: SnowflakeListQuery = [], mentions: SnowflakeListQuery = [],
                         has: list[Literal["file", "image", "link", "embed"]] = Query([], max_length=4),
                         min_id: OptSnowflakeQuery = None, max_id: OptSnowflakeQuery = None,
                         sort_order: Literal["asc", "desc"] = "desc", offset: int = Query(0, ge=0, le=9975),
                         limit: int = Query(25, ge=1, le=25)) -> dict[str, Any]:
    q = search.SearchQuery(content=content, author_ids=author_id, mentions=mentions, has=list(has), min_id=min_id, max_id=max_id,
                           sort_order=sort_order, offset=offset, limit=limit)
    return await search.search_channel(platform, me.id, channel_id, q)


@router.patch("/channels/{channel_id}/messages/{message_id}", openapi_extra=request_body(EditMessageBody))
async def edit_message(channel_id: Snowflake, message_id: Snowflake, request: Request, me: Me, platform: PlatformDep) -> dict[str, Any]:
    body = _parse(EditMessageBody, await _read_json(request))
    changes = body.model_dump(exclude_unset=True)
    if "content" in changes:
        check_content(platform, changes["content"] or "")
    if changes.get("embeds"):
        _check_embeds(changes["embeds"])
    return await messages.do_edit_message(platform, me, channel_id, message_id, changes)


@router.delete("/channels/{channel_id}/messages/{message_id}", status_code=204)
async def delete_message(channel_id: Snowflake, message_id: Snowflake, me: Me, platform: PlatformDep, reason: Reason) -> Response:
    await messages.do_delete_message(platform, me.id, channel_id, message_id, reason)
    return Response(status_code=204)


@router.post("/channels/{channel_id}/messages/bulk-delete", status_code=204)
async def bulk_delete(channel_id: Snowflake, body: BulkDeleteBody, me: Me, platform: PlatformDep, reason: Reason) -> Response:
    await messages.do_bulk_delete(platform, me.id, channel_id, body.messages, reason)
    return Response(status_code=204)


@router.post("/channels/{channel_id}/messages/{message_id}/ack")
async def ack(channel_id: Snowflake, message_id: Snowflake, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await readstates.do_ack(platform, me.id, channel_id, message_id)


@router.get("/channels/{channel_id}/pins")
@router.get("/channels/{channel_id}/messages/pins")
async def pins(channel_id: Snowflake, me: Me, platform: PlatformDep) -> list[dict[str, Any]]:
    return await messages.get_pins(platform, me.id, channel_id)


@router.put("/channels/{channel_id}/pins/{message_id}", status_code=204)
@router.put("/channels/{channel_id}/messages/pins/{message_id}", status_code=204)
async def pin(channel_id: Snowflake, message_id: Snowflake, me: Me, platform: PlatformDep, reason: Reason) -> Response:
    await messages.do_pin(platform, me.id, channel_id, message_id, pin=True, reason=reason)
    return Response(status_code=204)


@router.delete("/channels/{channel_id}/pins/{message_id}", status_code=204)
@router.delete("/channels/{channel_id}/messages/pins/{message_id}", status_code=204)
async def unpin(channel_id: Snowflake, message_id: Snowflake, me: Me, platform: PlatformDep, reason: Reason) -> Response:
    await messages.do_pin(platform, me.id, channel_id, message_id, pin=False, reason=reason)
    return Response(status_code=204)


# after the pins routes: "/messages/pins" must not be read as a message id
@router.get("/channels/{channel_id}/messages/{message_id}")
async def get_message(channel_id: Snowflake, message_id: Snowflake, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await messages.get_message(platform, me.id, channel_id, message_id)


@router.put("/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", status_code=204)
async def add_reaction(channel_id: Snowflake, message_id: Snowflake, emoji: str, me: Me, platform: PlatformDep) -> Response:
    await reactions.do_add_reaction(platform, me, channel_id, message_id, emoji)
    return Response(status_code=204)


@router.delete("/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", status_code=204)
async def remove_own_reaction(channel_id: Snowflake, message_id: Snowflake, emoji: str, me: Me, platform: PlatformDep) -> Response:
    await reactions.do_remove_reaction(platform, me.id, channel_id, message_id, emoji)
    return Response(status_code=204)


@router.delete("/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}", status_code=204)
async def remove_reaction(channel_id: Snowflake, message_id: Snowflake, emoji: str, user_id: Snowflake, me: Me,
                          platform: PlatformDep) -> Response:
    await reactions.do_remove_reaction(platform, me.id, channel_id, message_id, emoji, user_id)
    return Response(status_code=204)


@router.get("/channels/{channel_id}/messages/{message_id}/reactions/{emoji}")
async def list_reactions(channel_id: Snowflake, message_id: Snowflake, emoji: str, me: Me, platform: PlatformDep,
                         after: int = Query(0, ge=0, le=MAX_SNOWFLAKE), limit: int = Query(25, ge=1, le=100)) -> list[dict[str, Any]]:
    return await reactions.list_reactors(platform, me.id, channel_id, message_id, emoji, after=after, limit=limit)


@router.delete("/channels/{channel_id}/messages/{message_id}/reactions/{emoji}", status_code=204)
async def clear_emoji(channel_id: Snowflake, message_id: Snowflake, emoji: str, me: Me, platform: PlatformDep) -> Response:
    await reactions.do_clear_reactions(platform, me.id, channel_id, message_id, emoji)
    return Response(status_code=204)


@router.delete("/channels/{channel_id}/messages/{message_id}/reactions", status_code=204)
async def clear_all(channel_id: Snowflake, message_id: Snowflake, me: Me, platform: PlatformDep) -> Response:
    await reactions.do_clear_reactions(platform, me.id, channel_id, message_id, None)
    return Response(status_code=204)


@router.get("/attachments/{channel_id}/{attachment_id}/{filename}")
async def download(channel_id: Snowflake, attachment_id: Snowflake, filename: str, me: Me, platform: PlatformDep) -> Response:
    row, data = await attachments.open_attachment(platform, me.id, channel_id, attachment_id, filename)
    inline = row.content_type in attachments.INLINE_TYPES
    return Response(data, media_type=row.content_type, headers={
        "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{row.filename}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=3600",
    })
