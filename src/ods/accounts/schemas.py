"""Request and response bodies for auth, users and API tokens.

Booleans and numbers in request bodies are strict: `0` for false or `"365"` for
365 is refused with 422, as the schema says, not coerced.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ods.accounts.passwords import MIN_LENGTH
from ods.core.auth import Role

# Where an account's password lives: "local" in ODS, "ldap" in the directory.
Source = Literal["local", "ldap"]
SOURCE_DESCRIPTION = (
    "local: ODS holds the password; ldap: a directory account, whose password and role "
    "(from its groups, at every login) come from the directory."
)

# A password being set. The policy (`passwords.check_new_password`) refuses one
# under MIN_LENGTH with 400 and its reason; the schema says so too, so that
# clients and fuzzers know the length before they send.
NewPassword = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        json_schema_extra={"minLength": MIN_LENGTH},
        description=f"At least {MIN_LENGTH} characters, not common or easy to guess.",
    ),
]


class LoginRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"username": "admin", "password": "ods1234!"}]},
    )

    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)


class LoginResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "token": "ods_QnJ1c2ggeW91ciB0ZWV0aCBhZnRlciBsdW5jaA",
                    "must_change_password": True,
                    "expires": "2026-11-22T14:00:00",
                    "username": "admin",
                    "role": "admin",
                }
            ]
        }
    )

    token: str
    must_change_password: bool
    expires: str | None
    username: str
    role: Role


class PasswordChange(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"old_password": "ods1234!", "new_password": "a long new passphrase"}]
        },
    )

    old_password: str = Field(min_length=1, max_length=1024)
    new_password: NewPassword


class Me(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "username": "admin",
                    "role": "admin",
                    "must_change_password": False,
                    "source": "local",
                }
            ]
        }
    )

    id: int
    username: str
    role: Role
    must_change_password: bool
    source: Source = Field(description=SOURCE_DESCRIPTION)


class UserOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 2,
                    "username": "autopkg",
                    "role": "package_manager",
                    "must_change_password": False,
                    "created": "2026-11-22T09:00:00",
                    "created_ts": 1795338000,
                    "source": "local",
                }
            ]
        }
    )

    id: int
    username: str
    role: Role
    must_change_password: bool
    created: str
    created_ts: int
    source: Source = Field(description=SOURCE_DESCRIPTION)


class UserList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": 1,
                            "username": "admin",
                            "role": "admin",
                            "must_change_password": False,
                            "created": "2026-11-22T08:00:00",
                            "created_ts": 1795334400,
                            "source": "local",
                        },
                        {
                            "id": 3,
                            "username": "jdoe",
                            "role": "package_manager",
                            "must_change_password": False,
                            "created": "2026-11-23T08:00:00",
                            "created_ts": 1795420800,
                            "source": "ldap",
                        },
                    ]
                }
            ]
        }
    )

    items: list[UserOut]


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "autopkg",
                    "password": "a long passphrase",
                    "role": "package_manager",
                    "must_change_password": False,
                }
            ]
        },
    )

    username: str = Field(min_length=1, max_length=150, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: NewPassword
    role: Role = Role.READ_ONLY
    must_change_password: bool = Field(default=True, strict=True)


class UserUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"role": "admin"}, {"password": "a reset passphrase"}]},
    )

    role: Role | None = None
    password: NewPassword | None = None
    must_change_password: bool | None = Field(default=None, strict=True)


def _not_text(value: object) -> object:
    """An integer as JSON has it (365 or 365.0), not "365" or true."""
    if isinstance(value, str | bool):
        raise ValueError("must be a number")
    return value


class TokenCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "AutoPkg on build-mac-01", "expires_days": 365}]},
    )

    name: str = Field(min_length=1, max_length=255)
    expires_days: Annotated[int | None, BeforeValidator(_not_text)] = Field(
        default=None, ge=1, le=3650
    )


TOKEN_EXAMPLE: dict[str, Any] = {
    "id": 7,
    "name": "AutoPkg on build-mac-01",
    "kind": "api",
    "created": "2026-11-22T09:00:00",
    "expires": None,
    "last_used": None,
}


class TokenOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [TOKEN_EXAMPLE]})

    id: int
    name: str
    kind: str
    created: str
    expires: str | None
    last_used: str | None


class TokenCreated(TokenOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**TOKEN_EXAMPLE, "token": "ods_QnJ1c2ggeW91ciB0ZWV0aCBhZnRlciBsdW5jaA"}]
        }
    )

    token: str = Field(description="The secret; shown this once only.")


class TokenList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": 7,
                            "name": "AutoPkg on build-mac-01",
                            "kind": "api",
                            "created": "2026-11-22T09:00:00",
                            "expires": None,
                            "last_used": "2026-11-22T10:15:00",
                        }
                    ]
                }
            ]
        }
    )

    items: list[TokenOut]


def iso_or_none(moment: dt.datetime | None) -> str | None:
    return moment.replace(microsecond=0).isoformat() if moment else None
