"""Domain errors. Each failure has one type; the API maps them once to HTTP (Discord's JSON
error shape: `code`, `message`, optional `errors`), the gateway to close codes."""

from __future__ import annotations

from typing import Any


class TownsquareError(Exception):
    """Base of every domain error: `status` and `code` follow Discord's JSON error codes."""

    status: int = 400
    code: int = 0
    message: str = "Bad request"

    def __init__(self, message: str | None = None, *, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message
        self.errors = errors

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


class Unauthorized(TownsquareError):
    status, code, message = 401, 0, "401: Unauthorized"


class InvalidCredentials(TownsquareError):
    status, code, message = 401, 50035, "Login or password is invalid"


class MissingAccess(TownsquareError):
    status, code, message = 403, 50001, "Missing Access"


class MissingPermissions(TownsquareError):
    status, code, message = 403, 50013, "Missing Permissions"


class CannotEditOthersMessage(TownsquareError):
    status, code, message = 403, 50005, "Cannot edit a message authored by another user"


class CannotSendInChannelType(TownsquareError):
    status, code, message = 400, 50008, "Cannot send messages in a non-text channel"


class ThreadLocked(TownsquareError):
    status, code, message = 400, 50083, "Operation cannot be performed on an archived thread"


class NotFound(TownsquareError):
    status, code, message = 404, 0, "404: Not Found"


class UnknownGuild(NotFound):
    code, message = 10004, "Unknown Guild"


class UnknownChannel(NotFound):
    code, message = 10003, "Unknown Channel"


class UnknownMessage(NotFound):
    code, message = 10008, "Unknown Message"


class UnknownUser(NotFound):
    code, message = 10013, "Unknown User"


class UnknownMember(NotFound):
    code, message = 10007, "Unknown Member"


class UnknownRole(NotFound):
    code, message = 10011, "Unknown Role"


class UnknownEmoji(TownsquareError):
    status, code, message = 400, 10014, "Unknown Emoji"


class UnknownInvite(NotFound):
    code, message = 10006, "Unknown Invite"


class UnknownAttachment(NotFound):
    code, message = 10000, "Unknown Attachment"


class UnknownOverwrite(NotFound):
    code, message = 10009, "Unknown Overwrite"


class UnknownAgent(NotFound):
    code, message = 10100, "Unknown Agent"  # Townsquare extension (Discord has no agents)


class UnknownMemory(NotFound):
    code, message = 10101, "Unknown Memory"  # Townsquare extension


class UnknownRun(NotFound):
    code, message = 10110, "Unknown Run"  # Townsquare extension: a scenario run


class UnknownBatch(NotFound):
    code, message = 10111, "Unknown Batch"  # Townsquare extension: the runs of one `townsquare run`


class MemoryUnavailable(TownsquareError):
    status, code, message = 503, 130001, "The memory store is unavailable, try again shortly"


class ModelUnavailable(TownsquareError):
    """No language model backend answered (unreachable, failing, or switched off by its breaker)."""

    status, code, message = 503, 130003, "The language model is unavailable, try again shortly"


class AttachmentCorrupt(TownsquareError):
    """The stored (encrypted) file fails its integrity check: altered at rest, cut short, or
    sealed with an upload key this server lacks. The server's fault, not the client's: a 500,
    in the usual JSON shape."""

    status, code, message = 500, 130002, "The attachment's stored bytes failed their integrity check"


class InvalidFormBody(TownsquareError):
    status, code, message = 400, 50035, "Invalid Form Body"

    @classmethod
    def field(cls, path: str, error_code: str, text: str) -> "InvalidFormBody":
        """One failing field, nested like Discord's `errors` object (`a.b.0` -> a/b/0)."""
        errors: dict[str, Any] = {"_errors": [{"code": error_code, "message": text}]}
        for part in reversed(path.split(".")):
            errors = {part: errors}
        return cls(errors=errors)


class InvalidJson(TownsquareError):
    status, code, message = 400, 50109, "The request body contains invalid JSON."


class EmptyMessage(TownsquareError):
    status, code, message = 400, 50006, "Cannot send an empty message"


class TooManyMessagesToDelete(TownsquareError):
    status, code, message = 400, 50016, "Provided too few or too many messages to delete. Must provide at least 2 and fewer than 100 messages to delete."


class PayloadTooLarge(TownsquareError):
    status, code, message = 413, 40005, "Request entity too large"


class MaxPins(TownsquareError):
    status, code, message = 400, 30003, "Maximum number of pins reached (50)"


class UsernameTaken(TownsquareError):
    status, code, message = 400, 50035, "Invalid Form Body"

    def __init__(self) -> None:
        super().__init__(errors={"username": {"_errors": [{"code": "USERNAME_ALREADY_TAKEN", "message": "Username is unavailable. Try adding numbers or characters."}]}})


class InvalidRecipients(TownsquareError):
    status, code, message = 400, 50033, "Invalid Recipients"


class RateLimited(TownsquareError):
    status, code, message = 429, 0, "You are being rate limited."

    def __init__(self, retry_after: float, *, is_global: bool, bucket: str, limit: int, reset_after: float) -> None:
        super().__init__()
        self.retry_after = retry_after
        self.is_global = is_global
        self.bucket = bucket
        self.limit = limit
        self.reset_after = reset_after

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "retry_after": round(self.retry_after, 3), "global": self.is_global, "code": 0}
