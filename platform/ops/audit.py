"""Audit action types of the instance's operations (Townsquare extensions, after the security
log's 220-225). Entries have no guild: they are the instance's, not a society's."""

from __future__ import annotations

from enum import IntEnum


class OpsAction(IntEnum):
    BACKUP_CREATE = 230
    BACKUP_DOWNLOAD = 231
    BACKUP_RESTORE = 232
    BACKUP_DELETE = 233
