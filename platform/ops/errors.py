"""The backup domain's failures (one type each), in Discord's error shape like every other
domain error: the API maps `TownsquareError` once (platform/api/errors.py)."""

from __future__ import annotations

from ..core.errors import InvalidFormBody, NotFound, TownsquareError


class UnknownBackup(NotFound):
    code, message = 10110, "Unknown Backup"  # Townsquare extension


class BackupBusy(TownsquareError):
    status, code, message = 409, 130010, "A backup or restore is already running, try again when it has finished"


class InstallationNotEmpty(TownsquareError):
    status, code, message = 409, 130011, ("The installation is not empty: a backup is restored into an installation without "
                                          "content (the CLI's `backup restore --force` wipes it first)")


class BackupDamaged(TownsquareError):
    status, code, message = 400, 130012, "The backup archive is damaged (a member is missing or its checksum differs)"


class BackupIncompatible(TownsquareError):
    status, code, message = 400, 130013, "The backup was made by a newer or unknown version of Townsquare"


class BackupKeyMissing(TownsquareError):
    status, code, message = 400, 130014, "The backup is encrypted with a key that is not configured (TOWNSQUARE_BACKUP_KEY)"


class BackupKeyInvalid(TownsquareError):
    # the server's configuration, not the request, is wrong
    status, code, message = 500, 130015, ("TOWNSQUARE_BACKUP_KEY is not usable: each comma-separated key must be 32 random bytes "
                                          "in base64 (python -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')")


def invalid_name() -> InvalidFormBody:
    return InvalidFormBody.field("name", "BACKUP_NAME_INVALID",
                                 "Not a backup name (townsquare-<UTC time>-<manual|scheduled>-<6 hex>.tar[.gz][.enc]).")
