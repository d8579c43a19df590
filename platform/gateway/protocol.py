"""Gateway v10 vocabulary: opcodes, close codes, intents, and which intent each event needs."""

from __future__ import annotations

from enum import IntEnum, IntFlag

API_VERSION = 10
MAX_FRAME_BYTES = 4096
FRAMES_PER_MINUTE = 120
SEQ_SHIFT = 16  # s = position << 16 | n: n counts ephemeral dispatches since that position


class Op(IntEnum):
    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


class Close(IntEnum):
    UNKNOWN_ERROR = 4000  # also: too slow to keep up (resumable)
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    INVALID_SEQ = 4007
    RATE_LIMITED = 4008
    SESSION_TIMED_OUT = 4009
    INVALID_SHARD = 4010
    INVALID_API_VERSION = 4012
    INVALID_INTENTS = 4013


class Intent(IntFlag):
    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_MODERATION = 1 << 2
    GUILD_EXPRESSIONS = 1 << 3
    GUILD_INTEGRATIONS = 1 << 4
    GUILD_WEBHOOKS = 1 << 5
    GUILD_INVITES = 1 << 6
    GUILD_VOICE_STATES = 1 << 7
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    GUILD_MESSAGE_TYPING = 1 << 11
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    DIRECT_MESSAGE_TYPING = 1 << 14
    MESSAGE_CONTENT = 1 << 15
    GUILD_SCHEDULED_EVENTS = 1 << 16
    AUTO_MODERATION_CONFIGURATION = 1 << 20
    AUTO_MODERATION_EXECUTION = 1 << 21
    GUILD_MESSAGE_POLLS = 1 << 24
    DIRECT_MESSAGE_POLLS = 1 << 25


ALL_INTENTS = sum(int(i) for i in Intent)  # distinct bits: the sum is their union

_G, _M = Intent.GUILDS, Intent.GUILD_MEMBERS
# event type -> (intent in a guild, intent in a DM); None means always delivered.
_EVENT_INTENTS: dict[str, tuple[int | None, int | None]] = {
    "GUILD_CREATE": (_G, None), "GUILD_UPDATE": (_G, None), "GUILD_DELETE": (None, None),
    "GUILD_ROLE_CREATE": (_G, None), "GUILD_ROLE_UPDATE": (_G, None), "GUILD_ROLE_DELETE": (_G, None),
    "CHANNEL_CREATE": (_G, None), "CHANNEL_UPDATE": (_G, None), "CHANNEL_DELETE": (_G, None),
    "CHANNEL_PINS_UPDATE": (_G, Intent.DIRECT_MESSAGES),
    "THREAD_CREATE": (_G, None), "THREAD_UPDATE": (_G, None), "THREAD_DELETE": (_G, None),
    "THREAD_MEMBERS_UPDATE": (_G | _M, None),
    "GUILD_MEMBER_ADD": (_M, None), "GUILD_MEMBER_UPDATE": (_M, None), "GUILD_MEMBER_REMOVE": (_M, None),
    "GUILD_AUDIT_LOG_ENTRY_CREATE": (Intent.GUILD_MODERATION, None),
    "INVITE_CREATE": (Intent.GUILD_INVITES, None), "INVITE_DELETE": (Intent.GUILD_INVITES, None),
    "MESSAGE_CREATE": (Intent.GUILD_MESSAGES, Intent.DIRECT_MESSAGES),
    "MESSAGE_UPDATE": (Intent.GUILD_MESSAGES, Intent.DIRECT_MESSAGES),
    "MESSAGE_DELETE": (Intent.GUILD_MESSAGES, Intent.DIRECT_MESSAGES),
    "MESSAGE_DELETE_BULK": (Intent.GUILD_MESSAGES, Intent.DIRECT_MESSAGES),
    "MESSAGE_REACTION_ADD": (Intent.GUILD_MESSAGE_REACTIONS, Intent.DIRECT_MESSAGE_REACTIONS),
    "MESSAGE_REACTION_REMOVE": (Intent.GUILD_MESSAGE_REACTIONS, Intent.DIRECT_MESSAGE_REACTIONS),
    "MESSAGE_REACTION_REMOVE_ALL": (Intent.GUILD_MESSAGE_REACTIONS, Intent.DIRECT_MESSAGE_REACTIONS),
    "MESSAGE_REACTION_REMOVE_EMOJI": (Intent.GUILD_MESSAGE_REACTIONS, Intent.DIRECT_MESSAGE_REACTIONS),
    "TYPING_START": (Intent.GUILD_MESSAGE_TYPING, Intent.DIRECT_MESSAGE_TYPING),
    "PRESENCE_UPDATE": (Intent.GUILD_PRESENCES, None),
}

# Plain ints: IntFlag arithmetic is slow, and this is looked up for every delivery.
EVENT_INTENTS = {event: (None if g is None else int(g), None if d is None else int(d)) for event, (g, d) in _EVENT_INTENTS.items()}
GUILDS, GUILD_PRESENCES, MESSAGE_CONTENT = int(Intent.GUILDS), int(Intent.GUILD_PRESENCES), int(Intent.MESSAGE_CONTENT)
GUILD_MEMBERS = int(Intent.GUILD_MEMBERS)

# Dropped first when a client falls behind; everything else is never skipped.
EPHEMERAL = frozenset({"TYPING_START", "PRESENCE_UPDATE"})
# Events whose content a bot without MESSAGE_CONTENT sees emptied (Discord's rule).
CONTENT_EVENTS = frozenset({"MESSAGE_CREATE", "MESSAGE_UPDATE"})


def intent_allows(intents: int, event: str, *, in_dm: bool) -> bool:
    guild_intent, dm_intent = EVENT_INTENTS.get(event, (None, None))
    needed = dm_intent if in_dm else guild_intent
    return needed is None or intents & needed != 0
