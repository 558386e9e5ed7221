"""Events of user accounts and tokens: created, changed, deleted, logins refused."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ods.core.auth import Role
from ods.events.base import EventData


class UserEvent(EventData):
    """An event about one user account."""

    username: str = Field(description="The user's username.")


class UserCreated(UserEvent):
    kind = "user.created"
    description = "A user account was created."

    role: Role = Field(description="The user's role.")
    must_change_password: bool = Field(
        description="Whether the user must choose a new password at the next login."
    )

    def message(self) -> str:
        return f"User {self.username} created"


class UserUpdated(UserEvent):
    kind = "user.updated"
    description = "An admin changed a user's role, password or password-change requirement."

    role: Role = Field(description="The user's role, after the change.")
    must_change_password: bool = Field(
        description="Whether the user must choose a new password at the next login."
    )
    password_reset: bool = Field(
        description="True when the admin set a new password (the user's logins ended)."
    )

    def message(self) -> str:
        return f"User {self.username} updated"


class UserDeleted(UserEvent):
    kind = "user.deleted"
    description = "A user account and its tokens were deleted."

    role: Role = Field(description="The role the user had.")

    def message(self) -> str:
        return f"User {self.username} deleted"


class UserPasswordChanged(UserEvent):
    kind = "user.password_changed"
    description = "A user changed their own password."

    def message(self) -> str:
        return "Password changed"


class TokenEvent(EventData):
    """An event about one API token or login session."""

    name: str = Field(description="The token's name (empty for a login session).")
    username: str = Field(description="The username of the token's owner.")


class TokenCreated(TokenEvent):
    kind = "token.created"
    description = "A user created an API token."

    expires: str | None = Field(
        description="When the token expires (UTC, ISO 8601); null when it does not."
    )

    def message(self) -> str:
        return f"API token {self.name!r} created"


class TokenRevoked(TokenEvent):
    kind = "token.revoked"
    description = "An API token or a login session was revoked."

    token_kind: Literal["api", "session"] = Field(
        description="api for an API token, session for a login session."
    )

    def message(self) -> str:
        return f"Token {self.name!r} revoked"


class PasswordCheckFailed(EventData):
    kind = "user.password_check_failed"
    description = (
        "Someone holding a user's token tried to change its password with a wrong old password."
    )

    username: str = Field(description="The user whose password was tried.")
    address: str = Field(
        description="The client's address as this server saw it; unknown when it could not tell."
    )

    def message(self) -> str:
        return f"Wrong old password for {self.username!r} from {self.address}"


class LoginFailed(EventData):
    kind = "login.failed"
    description = "A login was refused: unknown username or wrong password."

    username: str = Field(description="The username that was tried.")
    address: str = Field(
        description="The client's address as this server saw it; unknown when it could not tell."
    )

    def message(self) -> str:
        return f"Failed login for {self.username!r} from {self.address}"
