"""Users, bots and their tokens. Passwords are hashed with argon2; tokens are random and only
their SHA-256 is stored, so a database dump does not hand out sessions. Registrations, logins
(failed ones too, without the password), logouts and bot tokens issued or reset go to the
security log (audit entries without a guild, see audit.py)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from ..core.errors import InvalidCredentials, InvalidFormBody, MissingPermissions, RateLimited, Unauthorized, UnknownUser, UsernameTaken
from ..core.secretbox import seal
from ..core.snowflake import new_id
from ..db.models import Agent, Token, User
from ..events.types import E
from . import shapes
from .audit import A
from .context import Platform, Tx
from .guilds import emit_member_update

_hasher = PasswordHasher()
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{2,32}$")


@dataclass(frozen=True, slots=True)
class AuthUser:
    id: int
    username: str
    global_name: str | None
    avatar: str | None
    bot: bool
    is_admin: bool
    token_id: int

    def as_user(self) -> dict[str, Any]:
        return shapes.user(self)

    def as_author(self) -> dict[str, Any]:
        """The partial user a message carries, the same whether it was just sent or read back."""
        return shapes.user_json({"id": self.id, "username": self.username, "global_name": self.global_name, "avatar": self.avatar,
                                 "bot": self.bot})


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _new_token(user_id: int) -> str:
    head = base64.urlsafe_b64encode(str(user_id).encode()).decode().rstrip("=")
    return f"{head}.{secrets.token_urlsafe(6)}.{secrets.token_urlsafe(27)}"


def check_username(username: Any) -> str:
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
        raise InvalidFormBody.field(
            "username", "USERNAME_INVALID_CHARACTERS",
            "Username must be 2-32 characters of letters, digits, '_', '.' or '-'.",
        )
    return username


def check_password(password: Any) -> str:
    if not isinstance(password, str) or not 8 <= len(password) <= 128:
        raise InvalidFormBody.field("password", "PASSWORD_TOO_SHORT", "Password must be 8-128 characters long.")
    return password


async def _insert_user(tx: Tx, **values: Any) -> Any:
    try:
        async with tx.conn.begin_nested():
            return (await tx.conn.execute(insert(User).values(**values).returning(User))).one()
    except IntegrityError:
        raise UsernameTaken() from None


async def _issue_token(tx: Tx, user_id: int, kind: str) -> str:
    token = _new_token(user_id)
    await tx.conn.execute(insert(Token).values(id=new_id(), user_id=user_id, token_hash=hash_token(token), kind=kind))
    return token


def _client(ip: str | None) -> dict[str, Any]:
    return {"ip": ip} if ip else {}


async def do_register(platform: Platform, *, username: str, password: str, email: str | None = None,
                      global_name: str | None = None, is_admin: bool = False, ip: str | None = None) -> tuple[Any, str]:
    check_username(username)
    check_password(password)
    if email is not None and (not isinstance(email, str) or len(email) > 254 or "@" not in email):
        raise InvalidFormBody.field("email", "EMAIL_INVALID", "Not a well formed email address.")
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    async with platform.transaction() as tx:
        row = await _insert_user(
            tx, id=new_id(), username=username, global_name=global_name, email=email,
            password_hash=password_hash, is_admin=is_admin,
        )
        token = await _issue_token(tx, row.id, "bearer")
        await tx.audit(guild_id=None, user_id=row.id, action_type=A.USER_REGISTER, target_id=row.id,
                       changes=[{"key": "username", "new_value": username}, *([{"key": "is_admin", "new_value": True}] if is_admin else [])],
                       options=_client(ip) or None)
    return row, token


async def _login_failed(platform: Platform, user_id: int | None, login: str, ip: str | None, why: str) -> None:
    async with platform.transaction() as tx:
        await tx.audit(guild_id=None, user_id=user_id, action_type=A.LOGIN_FAILED, target_id=user_id,
                       options={"login": login[:64], **_client(ip)}, reason=why)


# Per-account login backoff, beside the per-address throttle of the route (which a client
# behind many addresses escapes): after LOGIN_FREE_FAILURES failed logins in a row on one
# account, one attempt is let through per backoff period, which doubles with each further
# failure up to LOGIN_BACKOFF_MAX_SECONDS; a successful login clears it. Refused attempts do not
# reach the password check, so a refusal says nothing about the password. Counted in Redis, so
# every server instance shares it. An unknown login is counted under its own name, exactly like
# an account, so the backoff does not tell which logins exist.
LOGIN_FREE_FAILURES = 5
LOGIN_BACKOFF_MAX_SECONDS = 900
LOGIN_FAILURE_MEMORY_SECONDS = 3600  # failures older than this (with none since) are forgotten

# KEYS: failures, backoff. ARGV: free failures, max backoff ms. Returns the ms to wait (0: go on).
# Past the free failures, the attempt that is let through starts the next backoff period at once,
# so concurrent attempts cannot all slip through the same opening.
_LOGIN_GATE = """
local wait = redis.call('PTTL', KEYS[2])
if wait > 0 then return wait end
local fails = tonumber(redis.call('GET', KEYS[1]) or '0')
local free = tonumber(ARGV[1])
if fails >= free then
  local ms = math.min(1000 * 2 ^ (fails - free + 1), tonumber(ARGV[2]))
  redis.call('SET', KEYS[2], '1', 'PX', math.floor(ms))
end
return 0
"""


def login_keys(redis_prefix: str, account: str) -> list[str]:
    """The failure counter and the backoff of an account (`u<id>`) or an unknown login (`n<name>`)."""
    tag = hashlib.blake2s(account.encode(), digest_size=12).hexdigest()  # no login names in Redis key names
    return [f"{redis_prefix}login:fails:{tag}", f"{redis_prefix}login:backoff:{tag}"]


async def _login_gate(platform: Platform, keys: list[str]) -> None:
    if not platform.settings.rate_limits_enabled:
        return
    wait_ms = int(await platform.redis.eval(_LOGIN_GATE, 2, *keys, LOGIN_FREE_FAILURES, LOGIN_BACKOFF_MAX_SECONDS * 1000))
    if wait_ms > 0:
        wait = wait_ms / 1000
        raise RateLimited(wait, is_global=False, bucket="login-backoff", limit=LOGIN_FREE_FAILURES, reset_after=wait)


async def _login_failure(platform: Platform, keys: list[str]) -> None:
    if not platform.settings.rate_limits_enabled:
        return
    async with platform.redis.pipeline(transaction=True) as pipe:
        pipe.incr(keys[0])
        pipe.expire(keys[0], LOGIN_FAILURE_MEMORY_SECONDS)
        await pipe.execute()


async def do_login(platform: Platform, *, login: str, password: str, ip: str | None = None) -> tuple[Any, str]:
    async with platform.read() as conn:
        row = (
            await conn.execute(
                select(User).where(
                    (func.lower(User.username) == login.lower()) | (func.lower(User.email) == login.lower()),
                    User.bot.is_(False),
                )
            )
        ).first()
    # an account is one counter whether it is named by username or email; an unknown login, its name
    keys = login_keys(platform.settings.redis_prefix, f"u{row.id}" if row is not None and row.password_hash is not None else f"n{login.lower()}")
    await _login_gate(platform, keys)
    if row is None or row.password_hash is None:
        await asyncio.to_thread(_dummy_verify)  # same cost whether or not the user exists
        await _login_failure(platform, keys)
        await _login_failed(platform, None, login, ip, "unknown login")
        raise InvalidCredentials()
    try:
        await asyncio.to_thread(_hasher.verify, row.password_hash, password)
    except (VerificationError, InvalidHashError):
        await _login_failure(platform, keys)
        await _login_failed(platform, row.id, login, ip, "wrong password")
        raise InvalidCredentials() from None
    if platform.settings.rate_limits_enabled:
        await platform.redis.delete(*keys)
    async with platform.transaction() as tx:
        token = await _issue_token(tx, row.id, "bearer")
        await tx.audit(guild_id=None, user_id=row.id, action_type=A.LOGIN, target_id=row.id, options=_client(ip) or None)
    return row, token


_DUMMY_HASH = _hasher.hash("not-a-password")


def _dummy_verify() -> None:
    try:
        _hasher.verify(_DUMMY_HASH, "wrong-password")
    except VerificationError:
        pass


async def insert_bot(tx: Tx, *, owner_id: int | None, username: str, global_name: str | None = None,
                     bio: str | None = None) -> tuple[Any, str]:
    """Inside a transaction: a bot user and its token."""
    check_username(username)
    row = await _insert_user(tx, id=new_id(), username=username, global_name=global_name, bot=True, owner_id=owner_id, bio=bio)
    return row, await _issue_token(tx, row.id, "bot")


async def do_create_bot(platform: Platform, *, owner_id: int | None, username: str,
                        global_name: str | None = None, bio: str | None = None) -> tuple[Any, str]:
    async with platform.transaction() as tx:
        row, token = await insert_bot(tx, owner_id=owner_id, username=username, global_name=global_name, bio=bio)
        await tx.audit(guild_id=None, user_id=owner_id, action_type=A.BOT_CREATE, target_id=row.id,
                       changes=[{"key": "username", "new_value": username}])
        return row, token


_AUTH = text(
    """
    SELECT u.id, u.username, u.global_name, u.avatar, u.bot, u.is_admin, t.id AS token_id, t.kind
    FROM tokens t JOIN users u ON u.id = t.user_id
    WHERE t.token_hash = :h AND t.revoked_at IS NULL
    """
)


async def authenticate(platform: Platform, scheme: str, token: str) -> AuthUser:
    """`scheme` is "Bot" or "Bearer"; a bot token must be sent as Bot, a user token as Bearer."""
    if not token or len(token) > 200:
        raise Unauthorized()
    digest = hash_token(token)
    cached = platform.auth_cache.get(digest)
    if cached is None:
        cached = await platform.auth_cache.single_flight(digest, lambda: _lookup(platform, digest))
    if cached is None:
        raise Unauthorized()
    user, kind = cached
    if (kind == "bot") != (scheme == "Bot"):
        raise Unauthorized()
    return user


async def _lookup(platform: Platform, digest: bytes) -> tuple[AuthUser, str] | None:
    async with platform.read() as conn:
        row = (await conn.execute(_AUTH, {"h": digest})).first()
    if row is None:
        return None
    found = (AuthUser(row.id, row.username, row.global_name, row.avatar, row.bot, row.is_admin, row.token_id), row.kind)
    platform.auth_cache.put(digest, found)
    return found


async def do_revoke_token(platform: Platform, me: AuthUser) -> None:
    async with platform.transaction() as tx:
        await tx.conn.execute(update(Token).where(Token.id == me.token_id).values(revoked_at=func.now()))
        await tx.emit(E.TOKEN_REVOKED, {"token_ids": [str(me.token_id)]}, user_ids=[me.id])
        await tx.audit(guild_id=None, user_id=me.id, action_type=A.LOGOUT, target_id=me.id, options={"token_id": str(me.token_id)})
    platform.auth_cache.forget_tokens({me.token_id})


async def do_reset_bot_token(platform: Platform, me: AuthUser, bot_id: int) -> str:
    """Revokes every token of the bot and issues a new one (Discord's "reset token")."""
    async with platform.transaction() as tx:
        bot = (await tx.conn.execute(select(User).where(User.id == bot_id, User.bot.is_(True)))).first()
        if bot is None:
            raise UnknownUser()
        if bot.owner_id != me.id and not me.is_admin:
            raise MissingPermissions()
        revoked = (
            await tx.conn.execute(
                update(Token).where(Token.user_id == bot_id, Token.revoked_at.is_(None)).values(revoked_at=func.now()).returning(Token.id)
            )
        ).scalars().all()
        token = await _issue_token(tx, bot_id, "bot")
        # an agent's workers act with its sealed token: they get the new one (and see the registry change)
        agent = (await tx.conn.execute(update(Agent).where(Agent.id == bot_id).values(
            token_secret=seal(platform.settings, token), updated_at=func.now()).returning(Agent.guild_id))).first()
        await tx.emit(E.TOKEN_REVOKED, {"token_ids": [str(t) for t in revoked]}, user_ids=[bot_id])
        await tx.audit(guild_id=None, user_id=me.id, action_type=A.TOKEN_RESET, target_id=bot_id,
                       options={"revoked": len(revoked), **({"agent_guild_id": str(agent.guild_id)} if agent else {})})
    platform.auth_cache.forget_tokens(set(revoked))
    return token


async def password_matches(password_hash: str | None, password: str) -> bool:
    if password_hash is None:
        return False
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def do_reset_password(platform: Platform, user_id: int, password: str, *, actor_id: int | None, reason: str) -> int:
    """Sets a user's password (an operator's reset: `townsquare init`) and ends the sessions opened
    with the old one (every bearer token revoked); returns how many were. Security log: the
    reset, never the password."""
    check_password(password)
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    async with platform.transaction() as tx:
        found = (await tx.conn.execute(update(User).where(User.id == user_id, User.bot.is_(False))
                                       .values(password_hash=password_hash).returning(User.id))).first()
        if found is None:
            raise UnknownUser()
        revoked = (
            await tx.conn.execute(
                update(Token).where(Token.user_id == user_id, Token.kind == "bearer", Token.revoked_at.is_(None))
                .values(revoked_at=func.now()).returning(Token.id)
            )
        ).scalars().all()
        if revoked:
            await tx.emit(E.TOKEN_REVOKED, {"token_ids": [str(t) for t in revoked]}, user_ids=[user_id])
        await tx.audit(guild_id=None, user_id=actor_id, action_type=A.PASSWORD_RESET, target_id=user_id,
                       options={"revoked": len(revoked)}, reason=reason)
    platform.auth_cache.forget_tokens(set(revoked))
    return len(revoked)


async def get_user(platform: Platform, user_id: int) -> Any:
    async with platform.read() as conn:
        row = (await conn.execute(select(User).where(User.id == user_id))).first()
    if row is None:
        raise UnknownUser()
    return row


async def list_bots(platform: Platform, me: AuthUser) -> list[Any]:
    async with platform.read() as conn:
        query = select(User).where(User.bot.is_(True)).order_by(User.id)
        if not me.is_admin:
            query = query.where(User.owner_id == me.id)
        return list((await conn.execute(query)).all())


async def do_modify_me(platform: Platform, me: AuthUser, changes: dict[str, Any]) -> Any:
    values: dict[str, Any] = {}
    if "username" in changes:
        values["username"] = check_username(changes["username"])
    if "global_name" in changes:
        name = changes["global_name"]
        if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= 32):
            raise InvalidFormBody.field("global_name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
        values["global_name"] = name
    if "bio" in changes:
        bio = changes["bio"]
        if bio is not None and (not isinstance(bio, str) or len(bio) > 190):
            raise InvalidFormBody.field("bio", "BASE_TYPE_MAX_LENGTH", "Must be 190 or fewer in length.")
        values["bio"] = bio
    async with platform.transaction() as tx:
        if values:
            try:
                async with tx.conn.begin_nested():
                    await tx.conn.execute(update(User).where(User.id == me.id).values(**values))
            except IntegrityError:
                raise UsernameTaken() from None
        row = (await tx.conn.execute(select(User).where(User.id == me.id))).one()
        if values:
            await tx.emit(E.USER_UPDATE, shapes.user(row), user_ids=[me.id])
            # the others see the new name through their guilds, as Discord's GUILD_MEMBER_UPDATE
            for guild_id in (await tx.conn.execute(text("SELECT guild_id FROM members WHERE user_id = :u"), {"u": me.id})).scalars():
                await emit_member_update(tx, guild_id, me.id)
    platform.auth_cache.forget_user(me.id)
    return row
