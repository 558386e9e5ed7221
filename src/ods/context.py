"""What a running server holds: settings, database, files. Built by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from ods.accounts.throttle import LoginThrottle
from ods.config import Settings
from ods.crypto import FieldCipher
from ods.db import Database
from ods.packages.storage import PackageFiles


@dataclass
class Context:
    settings: Settings
    db: Database
    cipher: FieldCipher
    files: PackageFiles
    throttle: LoginThrottle

    @classmethod
    def from_settings(cls, settings: Settings) -> Context:
        assert settings.database_url is not None
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            cipher=FieldCipher(settings.database_key_bytes),
            files=PackageFiles(settings.share_dir, settings.staging_dir),
            throttle=LoginThrottle(settings.login_max_failures, settings.login_lockout_seconds),
        )
