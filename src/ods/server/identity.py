"""This instance's identity (iss, key) and settings (name, url, stage, firewalled mode)."""

from __future__ import annotations

import base64
import secrets
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ods.core.crypto import FieldCipher, iss_for_key
from ods.core.db import Database
from ods.core.errors import InvalidInput, ServerMisconfigured
from ods.core.models import Server
from ods.core.stages import Stage
from ods.core.urls import server_url
from ods.events.catalogue import ServerUpdated, Setting, SettingChange
from ods.events.log import record

KEY_CONTEXT = "server.key"
SIGNING_KEY_CONTEXT = "server.signing_key"
SERVER_ID = 1


class About(BaseModel):
    """`GET /api/admin/about`: who this ODS is."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "firewalled_mode": False,
                    "iss": "e7be2c4bd6a04d6a9a1cb7c1b6bd1d3f",
                    "key": "r3Yt0Zt4m3e4yq0r4tGQ7wq6n5mN0b2k3l9Qp2x1c8s=",
                    "name": "Example ODS",
                    "stage": "Prod",
                    "url": "http://192.168.99.100",
                }
            ]
        }
    )

    firewalled_mode: bool
    iss: str
    key: str | None = Field(
        description="The registration secret; null for users who are not admins."
    )
    name: str
    stage: Stage
    url: str


FIREWALLED_WORDS = {"Enabled": True, "Disabled": False}


def _firewalled(value: object) -> object:
    # Exactly what the original took ("Enabled"/"Disabled") and JSON booleans;
    # 0, 1, "yes", "true" and the like are refused, not guessed at.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value in FIREWALLED_WORDS:
        return FIREWALLED_WORDS[value]
    raise ValueError('must be true, false, "Enabled" or "Disabled"')


# The schema says what is accepted, so a client generated from it sends the original's body.
FIREWALLED_SCHEMA: dict[str, object] = {
    "anyOf": [
        {"type": "boolean"},
        {"type": "string", "enum": list(FIREWALLED_WORDS)},
        {"type": "null"},
    ],
    "title": "Firewalled Mode",
    "description": '"Enabled" or "Disabled", as the original took it, or true or false.',
}


class AboutUpdate(BaseModel):
    """Body of `POST /api/admin/about/update`; every field is optional."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Example ODS",
                    "url": "http://192.168.99.100",
                    "firewalled_mode": "Disabled",
                    "stage": "Prod",
                }
            ]
        },
    )

    name: str | None = Field(
        default=None, max_length=255, description='Display name ("" clears it).'
    )
    url: str | None = Field(
        default=None,
        max_length=1024,
        description='How peers reach this server, http:// or https:// ("" clears it).',
    )
    firewalled_mode: Annotated[
        bool | None, BeforeValidator(_firewalled), WithJsonSchema(FIREWALLED_SCHEMA)
    ] = None
    stage: Stage | None = None
    iss: str | None = Field(default=None, description="Cannot be changed; refused if different.")
    key: str | None = Field(default=None, description="Cannot be changed; refused if different.")

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        # "" is what a fresh server shows, so a GET answer can be posted back unchanged.
        if value:
            value = value.strip()
            if not value or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
                raise ValueError("must be non-empty printable text")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        # "" clears the url; anything else is checked as every peer's url is.
        return server_url(value) if value else value


class Identity(BaseModel):
    """The row, with the key decrypted; what the domain works with."""

    iss: str
    key: str
    name: str
    url: str
    stage: Stage
    firewalled_mode: bool

    def about(self, *, with_key: bool = True) -> About:
        """The About answer; the key only for admins (it lets a server register here)."""
        about = About.model_validate(self.model_dump())
        return about if with_key else about.model_copy(update={"key": None})


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


async def _row(session: AsyncSession) -> Server:
    row = await session.get(Server, SERVER_ID)
    if row is None:
        raise ServerMisconfigured("the server identity is missing; restart ODS to create it")
    return row


def _identity(row: Server, cipher: FieldCipher) -> Identity:
    return Identity(
        iss=row.iss,
        key=cipher.decrypt(row.key_encrypted, KEY_CONTEXT),
        name=row.name,
        url=row.url,
        stage=Stage(row.stage),
        firewalled_mode=row.firewalled_mode,
    )


async def ensure_identity(db: Database, cipher: FieldCipher) -> Identity:
    """Create the identity on first start; check the key decrypts on every start."""
    async with db.transaction() as session:
        row = (await session.execute(select(Server))).scalar_one_or_none()
        if row is None:
            # The iss is made from the signing key: no one can sign for it with another.
            seed = secrets.token_bytes(32)
            public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
            row = Server(
                id=SERVER_ID,
                iss=iss_for_key(public.public_bytes(Encoding.Raw, PublicFormat.Raw)),
                signing_key_encrypted=cipher.encrypt(
                    base64.b64encode(seed).decode("ascii"), SIGNING_KEY_CONTEXT
                ),
                key_encrypted=cipher.encrypt(new_key(), KEY_CONTEXT),
                name="",
                url="",
                stage=Stage.PROD.value,
                firewalled_mode=False,
            )
            session.add(row)
            await session.flush()
        if row.signing_key_encrypted is None:
            # A server made before signing keys keeps its iss. An Ed25519 private
            # key is any 32 random bytes (its seed).
            row.signing_key_encrypted = cipher.encrypt(new_key(), SIGNING_KEY_CONTEXT)
        return _identity(row, cipher)


async def check_key(db: Database, cipher: FieldCipher) -> None:
    """ServerMisconfigured if DATABASE_KEY does not decrypt the stored key (none yet: fine)."""
    async with db.session() as session:
        row = await session.get(Server, SERVER_ID)
    if row is not None:
        cipher.decrypt(row.key_encrypted, KEY_CONTEXT)


async def signing_seed(db: Database, cipher: FieldCipher) -> bytes:
    """The 32-byte seed of this server's Ed25519 signing key."""
    async with db.session() as session:
        row = await _row(session)
    if row.signing_key_encrypted is None:
        raise ServerMisconfigured("the signing key is missing; restart ODS to create it")
    return base64.b64decode(cipher.decrypt(row.signing_key_encrypted, SIGNING_KEY_CONTEXT))


async def get_identity(db: Database, cipher: FieldCipher) -> Identity:
    async with db.session() as session:
        return _identity(await _row(session), cipher)


SETTINGS: tuple[Setting, ...] = ("name", "url", "stage", "firewalled_mode")


def _settings(identity: Identity) -> tuple[str, str, str, bool]:
    """The settings a user can change, in the order of SETTINGS."""
    return identity.name, identity.url, identity.stage.value, identity.firewalled_mode


async def update_identity(
    db: Database, cipher: FieldCipher, update: AboutUpdate, actor: str | None = None
) -> Identity:
    async with db.transaction() as session:
        row = await _row(session)
        current = _identity(row, cipher)
        if update.iss is not None and update.iss != current.iss:
            raise InvalidInput("iss is this server's permanent identity and cannot be changed.")
        if update.key is not None and update.key != current.key:
            raise InvalidInput("key is this server's permanent secret and cannot be changed.")
        if update.name is not None:
            row.name = update.name
        if update.url is not None:
            row.url = update.url
        if update.stage is not None:
            row.stage = update.stage.value
        if update.firewalled_mode is not None:
            row.firewalled_mode = update.firewalled_mode
        updated = _identity(row, cipher)
        changes = tuple(
            SettingChange(setting=setting, before=before, after=after)
            for setting, before, after in zip(
                SETTINGS, _settings(current), _settings(updated), strict=True
            )
            if before != after
        )
        if changes:
            event = ServerUpdated(
                name=updated.name,
                url=updated.url,
                stage=updated.stage,
                firewalled_mode=updated.firewalled_mode,
                changes=changes,
            )
            await record(session, event, actor=actor)
        return updated
