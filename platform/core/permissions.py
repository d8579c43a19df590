"""Discord's permission bitfields and the one function that resolves a member's permissions
in a channel (base role permissions, then @everyone / role / member overwrites)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntFlag


class P(IntFlag):
    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    SEND_TTS_MESSAGES = 1 << 12
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CHANGE_NICKNAME = 1 << 26
    MANAGE_NICKNAMES = 1 << 27
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    MANAGE_GUILD_EXPRESSIONS = 1 << 30
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    SEND_MESSAGES_IN_THREADS = 1 << 38
    MODERATE_MEMBERS = 1 << 40
    PIN_MESSAGES = 1 << 51


ALL = sum(int(flag) for flag in P)  # distinct bits: the sum is their union

# What @everyone can do in a new society: a friendly chat room, not a moderated one.
DEFAULT_EVERYONE = int(
    P.CREATE_INSTANT_INVITE | P.ADD_REACTIONS | P.VIEW_CHANNEL | P.SEND_MESSAGES | P.EMBED_LINKS
    | P.ATTACH_FILES | P.READ_MESSAGE_HISTORY | P.USE_EXTERNAL_EMOJIS | P.CHANGE_NICKNAME
    | P.CREATE_PUBLIC_THREADS | P.CREATE_PRIVATE_THREADS | P.SEND_MESSAGES_IN_THREADS
)

# Permissions that only make sense in text channels; a denied VIEW_CHANNEL removes them all.
MAX_PERMISSION_VALUE = (1 << 53) - 1


@dataclass(frozen=True, slots=True)
class Overwrite:
    id: int
    type: int  # 0 role, 1 member
    allow: int
    deny: int


# Plain ints for the checks below: IntFlag arithmetic builds enum members and is slow.
_ADMIN, _VIEW = int(P.ADMINISTRATOR), int(P.VIEW_CHANNEL)


def base_permissions(*, user_id: int, owner_id: int, everyone_permissions: int, role_permissions: Iterable[int]) -> int:
    if user_id == owner_id:
        return ALL
    perms = everyone_permissions
    for value in role_permissions:
        perms |= value
    if perms & _ADMIN:
        return ALL
    return perms


def apply_overwrites(base: int, *, guild_id: int, user_id: int, role_ids: Iterable[int], overwrites: Iterable[Overwrite]) -> int:
    """Discord's order: @everyone overwrite, then all role overwrites together, then the member's."""
    if base & _ADMIN:
        return ALL
    by_target = {(o.type, o.id): o for o in overwrites}
    perms = base
    everyone = by_target.get((0, guild_id))
    if everyone:
        perms = (perms & ~everyone.deny) | everyone.allow
    allow = deny = 0
    for role_id in role_ids:
        o = by_target.get((0, role_id))
        if o:
            allow |= o.allow
            deny |= o.deny
    perms = (perms & ~deny) | allow
    member = by_target.get((1, user_id))
    if member:
        perms = (perms & ~member.deny) | member.allow
    if not perms & _VIEW:
        return 0
    return perms


def has(perms: int, needed: int) -> bool:
    needed = int(needed)
    return perms & _ADMIN != 0 or perms & needed == needed
