"""Typed settings: environment, the ODS_CONF file, and first-start secrets.

Settings come from environment variables, then from the plain `KEY = value`
file named by `ODS_CONF` (read as text, never executed), then defaults.
`load_settings()` resolves everything a running server needs (data dir,
database URL, secrets) and raises `ConfigError` with one line naming the
variable when something is wrong.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import secrets
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ods.core import jamf_settings, platform

SIZE_SUFFIXES = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
SECRET_FILES = {"secret_key": "SECRET_KEY", "database_key": "DATABASE_KEY"}


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the variable."""


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ods"


def parse_size(value: object) -> int:
    """`1048576`, `512M`, `20G` or `1.5T` to bytes."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(value), re.IGNORECASE)
    if not match:
        raise ValueError("must be a size in bytes, optionally with K, M, G or T (e.g. 20G)")
    return int(float(match.group(1)) * SIZE_SUFFIXES[match.group(2).upper()])


def webhook_allow_entries(value: str) -> list[str]:
    """ODS_WEBHOOK_ALLOW's hosts and CIDRs, lower-case."""
    return [entry.strip().lower() for entry in value.split(",") if entry.strip()]


def parse_reserve(value: str) -> tuple[float | None, int]:
    """`5%` to (5.0, 0); `256M` to (None, 268435456)."""
    text = value.strip()
    if text.endswith("%"):
        try:
            percent = float(text[:-1])
        except ValueError:
            raise ValueError("must be a size (256M) or a percentage (5%)") from None
        if not 0 <= percent < 100:
            raise ValueError("a percentage must be at least 0 and below 100")
        return percent, 0
    return None, parse_size(text)


def parse_group_roles(value: str) -> list[tuple[str, str]]:
    """ODS_LDAP_GROUP_ROLES to (group DN, role) pairs.

    DNs hold `=` and `,` themselves, so pairs are split on `;` and each pair on its
    last `=`.
    """
    roles = ("admin", "package_manager", "read_only")
    pairs = []
    for entry in value.split(";"):
        if not entry.strip():
            continue
        group, sep, role = entry.rpartition("=")
        group, role = group.strip(), role.strip()
        if not sep or "=" not in group:
            raise ValueError(
                f"{entry.strip()!r} is not groupDN=role "
                "(e.g. cn=ods-admins,ou=groups,dc=example,dc=org=admin)"
            )
        if role not in roles:
            raise ValueError(f"{role!r} for {group!r} is not a role ({', '.join(roles)})")
        pairs.append((group, role))
    return pairs


def read_conf_file(path: Path) -> dict[str, str]:
    """Parse a `KEY = value` file: comments with #, optional quotes, no code."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"ODS_CONF: cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"ODS_CONF: {path} is not UTF-8 text") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConfigError(f"ODS_CONF: {path} line {number}: expected KEY = value")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.upper()] = value
    return values


class ConfFileSource(PydanticBaseSettingsSource):
    """Values from the ODS_CONF file, below the environment in priority."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get("ODS_CONF")
        self.values = read_conf_file(Path(path)) if path else {}
        known = {name for field in settings_cls.model_fields.values() for name in env_names(field)}
        unknown = sorted(set(self.values) - known)
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown setting in ODS_CONF file {path}")

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        for name in env_names(field):
            if name in self.values:
                return self.values[name], name, False
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, field_name)
            if value is not None:
                data[key] = value
        return data


def env_names(field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [str(alias)] if alias else []


def setting(default: Any, *names: str, description: str, **constraints: Any) -> Any:
    return Field(
        default,
        validation_alias=AliasChoices(*names) if len(names) > 1 else names[0],
        description=description,
        **constraints,
    )


class Settings(BaseSettings):
    """Every setting ODS reads. docs/configuration.md lists each one."""

    model_config = SettingsConfigDict(
        case_sensitive=True, extra="ignore", frozen=True, populate_by_name=True
    )

    secret_key: str | None = setting(
        None, "SECRET_KEY", description="Signs user sessions. Generated once into the data dir."
    )
    database_key: str | None = setting(
        None,
        "DATABASE_KEY",
        description="32-byte key (base64) encrypting sensitive database fields. "
        "Generated once into the data dir.",
    )
    database_url: str | None = setting(
        None,
        "DATABASE_URL",
        description="SQLAlchemy URL: sqlite:///…, mysql://…, postgresql://…. "
        "Default: SQLite in the data dir.",
    )
    mysql_server: str | None = setting(
        None, "MYSQL_SERVER", description="MySQL/MariaDB host[:port] (original ODS setting)."
    )
    mysql_database: str | None = setting(
        None, "MYSQL_DATABASE", description="MySQL/MariaDB database name."
    )
    mysql_user: str | None = setting(None, "MYSQL_USER", description="MySQL/MariaDB user.")
    mysql_password: str | None = setting(
        None, "MYSQL_PASSWORD", description="MySQL/MariaDB password."
    )
    redis_url: str | None = setting(
        None,
        "REDIS_URL",
        "CELERY_BROKER_URL",
        description="Redis for the job queue (CELERY_BROKER_URL is accepted as an alias). "
        "Unset: in-process queue.",
    )
    data_dir: Path = setting(
        None,
        "DATA_DIR",
        description="Database, secrets and share dir. Default: ~/.local/share/ods.",
    )
    upload_staging_dir: Path | None = setting(
        None,
        "UPLOAD_STAGING_DIR",
        description="Uploads and downloads in flight. Default: DATA_DIR/staging. "
        "Must be on the same filesystem as DATA_DIR/share.",
    )
    debug: bool = setting(False, "DEBUG", description="Verbose logging.")
    admin_password: str | None = setting(
        None,
        "ODS_ADMIN_PASSWORD",
        description="Password of the first-start admin account. Unset: ods1234!, "
        "which must be changed at first login.",
    )
    host: str = setting("127.0.0.1", "ODS_HOST", description="Address `ods serve` listens on.")
    port: int = setting(
        8000, "ODS_PORT", description="Port `ods serve` listens on.", ge=1, le=65535
    )
    max_upload_size: int = setting(
        20 * 1024**3,
        "ODS_MAX_UPLOAD_SIZE",
        description="Largest accepted upload, in bytes or with K/M/G/T. Larger: 413.",
        ge=1,
    )
    min_free_space: str = setting(
        "256M",
        "ODS_MIN_FREE_SPACE",
        description="Free space kept on the data dir's disk, in bytes, with K/M/G/T, "
        "or a percentage of the disk (5%). An upload or fetch that would leave less "
        "is refused (507) or waits.",
    )
    accel_redirect: str | None = setting(
        None,
        "ODS_ACCEL_REDIRECT",
        description="Internal Nginx location (e.g. /_ods_share/). Set: /share answers "
        "with X-Accel-Redirect and Nginx sends the bytes.",
    )
    share_requires_login: bool = setting(
        False,
        "ODS_SHARE_REQUIRES_LOGIN",
        description="Require a bearer token for /share downloads.",
    )
    token_ttl_hours: int = setting(
        12, "ODS_TOKEN_TTL_HOURS", description="Lifetime of a login token, in hours.", ge=1
    )
    login_max_failures: int = setting(
        5,
        "ODS_LOGIN_MAX_FAILURES",
        description="Failed logins per user and address before further tries get 429.",
        ge=1,
    )
    login_max_failures_per_address: int = setting(
        10,
        "ODS_LOGIN_MAX_FAILURES_PER_ADDRESS",
        description="Failed logins from one address, over every username, before further "
        "tries from it get 429.",
        ge=1,
    )
    login_lockout_seconds: int = setting(
        300,
        "ODS_LOGIN_LOCKOUT_SECONDS",
        description="Window over which failed logins are counted, in seconds.",
        ge=1,
    )
    reconcile_interval: int = setting(
        300,
        "ODS_RECONCILE_INTERVAL",
        description="Seconds between reconciliations with each peer (also done at start-up).",
        ge=10,
    )
    poll_interval: int = setting(
        60,
        "ODS_POLL_INTERVAL",
        description="Seconds between polls of each peer when this server is firewalled.",
        ge=5,
    )
    job_concurrency: int = setting(
        8,
        "ODS_JOB_CONCURRENCY",
        description="Background jobs `ods serve` runs at once with the in-process queue.",
        ge=1,
    )
    work_lease: int = setting(
        30,
        "ODS_WORK_LEASE",
        description=(
            "Seconds a process's hold on work in flight (uploads, jobs) lasts unless renewed; "
            "work of a process gone this long is taken over by another."
        ),
        ge=3,
        le=3600,
    )
    fetch_parallel_chunks: int = setting(
        1,
        "ODS_FETCH_PARALLEL_CHUNKS",
        description=(
            "Requests in flight at once when fetching a package from a peer; "
            "each asks for up to 32 consecutive 1 MiB chunks."
        ),
        ge=1,
        le=64,
    )
    fetch_stall_seconds: int = setting(
        30,
        "ODS_FETCH_STALL_SECONDS",
        description="A peer that sends nothing for this long is abandoned (retried later).",
        ge=1,
    )
    fetch_min_rate: int = setting(
        64 * 1024,
        "ODS_FETCH_MIN_RATE",
        description=(
            "A peer that sends a package's chunks slower than this many bytes per second "
            "(or with K/M/G), over each ODS_FETCH_STALL_SECONDS spent waiting for them, "
            "is abandoned (the fetch tries another source). 0: no floor."
        ),
        ge=0,
    )
    request_min_rate: int = setting(
        1024,
        "ODS_REQUEST_MIN_RATE",
        description=(
            "A client that sends a request body (an upload, say) slower than this many bytes "
            "per second (or with K/M/G), over each 10 s, is cut off with 408. 0: no floor."
        ),
        ge=0,
    )
    request_stall_seconds: int = setting(
        30,
        "ODS_REQUEST_STALL_SECONDS",
        description="A request body that sends nothing for this long is cut off with 408.",
        ge=1,
    )
    webhook_allow: str = setting(
        "",
        "ODS_WEBHOOK_ALLOW",
        description=(
            "Comma-separated hosts and CIDRs webhooks may target although they are loopback, "
            "link-local or this server's own addresses (e.g. `127.0.0.1,hooks.internal`)."
        ),
    )
    webhook_timeout: float = setting(
        10.0,
        "ODS_WEBHOOK_TIMEOUT",
        description="Seconds a webhook delivery may take, connecting and answering, in all.",
        gt=0,
    )
    webhook_retry_seconds: float = setting(
        30.0,
        "ODS_WEBHOOK_RETRY_SECONDS",
        description=(
            "The first wait before a failed webhook delivery is tried again; each further wait "
            "doubles (at most an hour, with jitter) until 24 hours after the event."
        ),
        gt=0,
    )
    peer_job_limit: int | None = setting(
        None,
        "ODS_PEER_JOB_LIMIT",
        description=(
            "Jobs with one peer (fetches it announced, notifications, reconciliations) "
            "a process runs at once. Default: a quarter of its job slots, at least 1."
        ),
        ge=1,
    )

    smtp_host: str | None = setting(
        None, "ODS_SMTP_HOST", description="SMTP server for email notifications. Unset: no mail."
    )
    smtp_port: int | None = setting(
        None,
        "ODS_SMTP_PORT",
        description="SMTP port. Default: 25 (none), 587 (starttls), 465 (tls).",
        ge=1,
        le=65535,
    )
    smtp_security: Literal["none", "starttls", "tls"] = setting(
        "starttls",
        "ODS_SMTP_SECURITY",
        description="none, starttls (upgrade after connecting) or tls (implicit TLS).",
    )
    smtp_username: str | None = setting(
        None, "ODS_SMTP_USERNAME", description="SMTP AUTH user. Unset: no AUTH."
    )
    smtp_password: str | None = setting(
        None, "ODS_SMTP_PASSWORD", description="SMTP AUTH password."
    )
    smtp_from: str | None = setting(
        None, "ODS_SMTP_FROM", description="Sender address of notification mails."
    )
    smtp_ca_file: Path | None = setting(
        None,
        "ODS_SMTP_CA_FILE",
        description="PEM file of CAs trusted for the SMTP server. Default: the system's.",
    )
    smtp_timeout: int = setting(
        30, "ODS_SMTP_TIMEOUT", description="Seconds one SMTP send may take.", ge=1
    )
    smtp_retry_seconds: float = setting(
        10.0,
        "ODS_SMTP_RETRY_SECONDS",
        description=(
            "The first wait before a mail that could not be sent is tried again; each further "
            "wait doubles (at most an hour, with jitter) until 24 hours after the event."
        ),
        gt=0,
    )

    # LDAP login (docs/ldap.md): directory users sign in with /api/auth/login, their
    # role taken from the groups they belong to at every login.
    ldap_url: str | None = setting(
        None,
        "ODS_LDAP_URL",
        description="Directory server, ldap://host[:port] or ldaps://host[:port]. "
        "Unset: no LDAP login.",
    )
    ldap_starttls: bool = setting(
        False,
        "ODS_LDAP_STARTTLS",
        description="Upgrade an ldap:// connection to TLS (StartTLS) before binding.",
    )
    ldap_ca_file: Path | None = setting(
        None,
        "ODS_LDAP_CA_FILE",
        description="PEM file of CAs trusted for the directory's certificate. "
        "Default: the system's.",
    )
    ldap_bind_dn: str | None = setting(
        None,
        "ODS_LDAP_BIND_DN",
        description="Service account ODS binds as to find users and groups. Unset: anonymous.",
    )
    ldap_bind_password: str | None = setting(
        None,
        "ODS_LDAP_BIND_PASSWORD",
        description="Password of ODS_LDAP_BIND_DN.",
        validate_default=True,
    )
    ldap_user_base: str | None = setting(
        None,
        "ODS_LDAP_USER_BASE",
        description="DN under which users are searched (e.g. ou=people,dc=example,dc=org).",
        validate_default=True,
    )
    ldap_user_filter: str = setting(
        "(uid={username})",
        "ODS_LDAP_USER_FILTER",
        description="Filter finding a user; {username} is the escaped login name. "
        "Active Directory: (sAMAccountName={username}).",
    )
    ldap_group_roles: str = setting(
        "",
        "ODS_LDAP_GROUP_ROLES",
        description="Group DN = role pairs separated by ; "
        "(cn=ods-admins,ou=groups,dc=example,dc=org=admin). A user in no listed group "
        "cannot log in; in several, the highest role wins.",
        validate_default=True,
    )
    ldap_timeout: int = setting(
        10,
        "ODS_LDAP_TIMEOUT",
        description="Seconds the directory has to accept a connection, and to answer each request.",
        ge=1,
        le=300,
    )

    @field_validator("ldap_url")
    @classmethod
    def _check_ldap_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        scheme, sep, _ = value.strip().partition("://")
        if not sep or scheme.lower() not in ("ldap", "ldaps"):
            raise ValueError("must start with ldap:// or ldaps:// (e.g. ldaps://dc1.example.org)")
        parts = urlsplit(value.strip())
        if not parts.hostname:
            raise ValueError("names no host (e.g. ldaps://dc1.example.org)")
        parts.port  # noqa: B018 - ValueError for a port that is not a number from 0 to 65535
        return value.strip()

    @field_validator("ldap_ca_file")
    @classmethod
    def _check_ldap_ca_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_file():
            raise ValueError(f"{value} is not a file")
        return value.expanduser() if value is not None else None

    @field_validator("ldap_user_filter")
    @classmethod
    def _check_ldap_user_filter(cls, value: str) -> str:
        value = value.strip()
        if "{username}" not in value:
            raise ValueError("must contain {username}, e.g. (uid={username})")
        if not (value.startswith("(") and value.endswith(")")):
            raise ValueError("must be in parentheses, e.g. (uid={username})")
        return value

    @field_validator("ldap_group_roles")
    @classmethod
    def _check_ldap_group_roles(cls, value: str) -> str:
        parse_group_roles(value)
        return value

    @field_validator(
        "ldap_group_roles", "ldap_user_base", "ldap_starttls", "ldap_bind_password", mode="after"
    )
    @classmethod
    def _needed_with_ldap(cls, value: Any, info: ValidationInfo) -> Any:
        """What an ODS_LDAP_URL needs beside it (the URL is validated before these)."""
        url = info.data.get("ldap_url")
        if not url:
            return value
        if info.field_name == "ldap_starttls" and value and url.lower().startswith("ldaps:"):
            raise ValueError("is for ldap:// URLs; ODS_LDAP_URL is ldaps://, TLS already")
        if info.field_name == "ldap_bind_password" and info.data.get("ldap_bind_dn") and not value:
            raise ValueError("required with ODS_LDAP_BIND_DN")
        if info.field_name == "ldap_user_base" and not value:
            raise ValueError("required with ODS_LDAP_URL (e.g. ou=people,dc=example,dc=org)")
        if info.field_name == "ldap_group_roles" and not value.strip():
            raise ValueError(
                "required with ODS_LDAP_URL: without a group mapped to a role, "
                "no directory user can log in"
            )
        return value

    # --- Package records in Jamf Pro (ods.integrations.jamf) ---------------------------
    jamf_timeout: float = setting(
        20.0,
        "ODS_JAMF_TIMEOUT",
        description="Seconds one request to Jamf Pro may take, connecting and answering.",
        gt=0,
    )
    jamf_retry_seconds: float = setting(
        30.0,
        "ODS_JAMF_RETRY_SECONDS",
        description=(
            "The first wait before a failed Jamf Pro record sync is tried again; each further "
            "wait doubles, up to an hour."
        ),
        gt=0,
    )
    jamf_sync_seconds: float = setting(
        2.0,
        "ODS_JAMF_SYNC_SECONDS",
        description="How often the event log is read for packages whose record to sync.",
        gt=0,
    )

    @field_validator("webhook_allow")
    @classmethod
    def _check_webhook_allow(cls, value: str) -> str:
        for entry in webhook_allow_entries(value):
            if "/" in entry:
                ipaddress.ip_network(entry, strict=False)  # ValueError names the entry
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, ConfFileSource(settings_cls)

    @field_validator("data_dir", mode="before")
    @classmethod
    def _default_data_dir(cls, value: object) -> object:
        return value or default_data_dir()

    @field_validator("max_upload_size", "fetch_min_rate", "request_min_rate", mode="before")
    @classmethod
    def _parse_size(cls, value: object) -> int:
        return parse_size(value)

    @field_validator("min_free_space")
    @classmethod
    def _check_reserve(cls, value: str) -> str:
        parse_reserve(value)
        return value.strip()

    def free_space_reserve(self, disk_size: int) -> int:
        """ODS_MIN_FREE_SPACE in bytes, for a disk of `disk_size` bytes."""
        percent, size = parse_reserve(self.min_free_space)
        return size if percent is None else int(disk_size * percent / 100)

    @field_validator("accel_redirect")
    @classmethod
    def _accel_prefix(cls, value: str | None) -> str | None:
        if value and not (value.startswith("/") and value.endswith("/")):
            raise ValueError("must start and end with / (e.g. /_ods_share/)")
        return value or None

    @property
    def share_dir(self) -> Path:
        return self.data_dir / "share"

    @property
    def versions_dir(self) -> Path:
        """Second names of the published files, by version (`ods.core.storage`)."""
        return self.data_dir / "versions"

    @property
    def staging_dir(self) -> Path:
        return self.upload_staging_dir or self.data_dir / "staging"

    @property
    def job_group_limit(self) -> int:
        """Jobs of one group (one peer's) a process runs at once: ODS_PEER_JOB_LIMIT,
        else a quarter of the job slots, so one peer never holds them all."""
        return self.peer_job_limit or max(1, self.job_concurrency // 4)

    @property
    def is_sqlite(self) -> bool:
        return (self.database_url or "").startswith("sqlite")

    @property
    def database_key_bytes(self) -> bytes:
        assert self.database_key is not None
        return base64.b64decode(self.database_key)

    # --- Jamf Pro: the file share distribution point path and its JWT (docs/jamf.md) ---
    jamf_share_name: str = setting(
        "CasperShare",
        "ODS_JAMF_SHARE_NAME",
        description="Share name (context) Jamf Pro's distribution point uses: every Public "
        "package is served at /<share name>/Packages/<filename> too.",
    )
    jamf_jwt_public_key: str | None = setting(
        None,
        "ODS_JAMF_JWT_PUBLIC_KEY",
        description="RSA public key (PEM text, or a path to a PEM file) of Jamf Pro's JSON Web "
        "Token configuration. Set: downloads need a valid ?token=<JWT>.",
    )

    @field_validator("jamf_share_name")
    @classmethod
    def _check_jamf_share_name(cls, value: str) -> str:
        return jamf_settings.check_share_name(value)

    @field_validator("jamf_jwt_public_key")
    @classmethod
    def _check_jamf_jwt_public_key(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        jamf_settings.jwt_public_key(value)  # ValueError says what is wrong
        return value


def field_env_name(settings_cls: type[BaseSettings], field_name: str) -> str:
    return env_names(settings_cls.model_fields[field_name])[0]


def normalise_database_url(url: str) -> str:
    """Give a plain URL the async driver ODS uses for it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"DATABASE_URL: {url!r} is not a URL (e.g. sqlite:///path/ods.db)")
    drivers = {
        "sqlite": "sqlite+aiosqlite",
        "mysql": "mysql+asyncmy",
        "mariadb": "mysql+asyncmy",
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
    }
    base = scheme.split("+", 1)[0]
    if base not in drivers:
        raise ConfigError(
            f"DATABASE_URL: unsupported database {base!r} (sqlite, mysql, postgresql)"
        )
    return f"{drivers[base]}://{rest}"


def mysql_url(settings: Settings) -> str | None:
    parts = [settings.mysql_server, settings.mysql_database, settings.mysql_user]
    if not any(parts):
        return None
    for name, value in zip(("MYSQL_SERVER", "MYSQL_DATABASE", "MYSQL_USER"), parts, strict=True):
        if not value:
            raise ConfigError(f"{name}: required when any MYSQL_* setting is given")
    password = quote(settings.mysql_password or "", safe="")
    user = quote(settings.mysql_user or "", safe="")
    return f"mysql+asyncmy://{user}:{password}@{settings.mysql_server}/{settings.mysql_database}"


def _read_secret(path: Path, variable: str) -> str:
    try:
        secret = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{variable}: cannot read {path}: {exc}") from None
    if not secret:
        raise ConfigError(f"{variable}: {path} is empty; remove it to generate a new one")
    return secret


def load_secret(data_dir: Path, filename: str, value: str | None, make: bool) -> str | None:
    """The given secret, or the one kept in the data dir, created once with 0600."""
    if value:
        return value
    variable = SECRET_FILES[filename]
    path = data_dir / "secrets" / filename
    if path.exists():
        return _read_secret(path, variable)
    if not make:
        return None
    secret = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    try:
        platform.make_private_dir(path.parent)
        created = _write_new_file(path, secret + "\n")
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot write {exc.filename}: {exc.strerror}") from None
    return secret if created else _read_secret(path, variable)


def _write_new_file(path: Path, text: str) -> bool:
    """Create `path` (mode 0600) holding `text`; False if another process created it first.

    The text is written whole under a temporary name and then linked into place, so a
    process starting at the same moment reads the whole secret, never half of it.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = platform.create_private_file(temporary)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink()
    return True


def check_database_key(value: str) -> None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("DATABASE_KEY: not valid base64") from exc
    if len(raw) != 32:
        raise ConfigError(f"DATABASE_KEY: must decode to 32 bytes, got {len(raw)}")


def describe_validation_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = error["loc"][0] if error["loc"] else "?"
    name = str(loc)
    if name in Settings.model_fields:
        name = field_env_name(Settings, name)
    return f"{name}: {error['msg']}"


def load_settings(*, create_dirs: bool = True, **overrides: Any) -> Settings:
    """Read and resolve settings; raise ConfigError naming the bad variable."""
    try:
        raw = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    data_dir = raw.data_dir.expanduser().resolve()
    if create_dirs:
        try:
            for path in (data_dir, data_dir / "share", raw.staging_dir):
                path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"DATA_DIR: cannot create {exc.filename}: {exc.strerror}") from None
    resolved: dict[str, Any] = {"data_dir": data_dir}
    for field in SECRET_FILES:
        resolved[field] = load_secret(data_dir, field, getattr(raw, field), create_dirs)
    if resolved["database_key"]:
        check_database_key(resolved["database_key"])
    url = raw.database_url or mysql_url(raw) or f"sqlite:///{data_dir / 'ods.db'}"
    resolved["database_url"] = normalise_database_url(url)
    if raw.upload_staging_dir:
        resolved["upload_staging_dir"] = raw.upload_staging_dir.expanduser().resolve()
    return raw.model_copy(update=resolved)
