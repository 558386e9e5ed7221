"""LDAP login: find a directory user, check the password by binding as them, map groups to a role.

ldap3 is synchronous: every look-up runs in this part's own small thread pool, with
ODS_LDAP_TIMEOUT bounding the connection and every answer, so a directory that
hangs holds a few threads for a while and never the event loop, nor the threads
that hash passwords. Usernames are escaped before they enter a filter; a user is
accepted only when exactly one entry matches, and an empty password is refused
before any bind (an LDAP bind with a DN and no password is an unauthenticated
bind, which directories answer with success).

Group membership comes from the user's `memberOf` values (Active Directory, or
OpenLDAP's memberof overlay) and, for each mapped group, from the group itself
(`member` or `uniqueMember` naming the user), so plain groupOfNames and
groupOfUniqueNames work without the overlay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import unicodedata
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from ods.core.auth import Role
from ods.core.config import Settings, parse_group_roles
from ods.core.errors import InvalidInput, Unavailable, one_line

with warnings.catch_warnings():
    # ldap3 2.9 reads pyasn1 names that pyasn1 0.6.1 deprecated, at import.
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3
    from ldap3.core.exceptions import LDAPException
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import parse_dn

if TYPE_CHECKING:
    from ods.core.context import Context

log = logging.getLogger(__name__)

# LDAP result codes (RFC 4511) that say the credentials were refused, not the directory.
INVALID_CREDENTIALS = 49
SIZE_LIMIT_EXCEEDED = 4
# Looks at once, at most: a directory that hangs holds these, not the whole process.
THREADS = 4

UNAVAILABLE = (
    "The directory server cannot be reached (or does not answer, or its certificate is "
    "not trusted), so directory accounts cannot log in now; local accounts still can. "
    "The server log says why."
)


@dataclass(frozen=True)
class DirectoryUser:
    """A directory account whose password was right; `role` None: in no mapped group."""

    dn: str
    role: Role | None


def normalise_dn(dn: str) -> str:
    """A DN as compared here: attribute names and values in lower case, no spaces around."""
    try:
        parts = parse_dn(dn)
    except LDAPException:
        return dn.strip().lower()
    return ",".join(f"{name.strip().lower()}={value.strip().lower()}" for name, value, _ in parts)


def check_username(username: str) -> None:
    """InvalidInput for a name that no directory entry should be looked up by."""
    if not username or any(unicodedata.category(c) in ("Cc", "Cf") for c in username):
        raise InvalidInput("A username cannot hold control characters.")


def close(connection: Any) -> None:
    """Unbind and close; ldap3 leaves the socket open when connecting or a request failed."""
    with contextlib.suppress(LDAPException, OSError):
        if connection.bound:
            connection.unbind()
    sock = getattr(connection, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


class VerifiedTls(ldap3.Tls):
    """TLS with the standard library's certificate and host name checks.

    ldap3's own host name check calls `ssl.match_hostname`, deprecated since Python
    3.7 and gone in 3.12; here the SSL context checks the name during the handshake.
    """

    def __init__(self, context: ssl.SSLContext, host: str) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED)
        self.context = context
        self.host = host

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        connection.socket = self.context.wrap_socket(
            connection.socket,
            server_side=False,
            do_handshake_on_connect=do_handshake,
            server_hostname=self.host,
        )


class Directory:
    """ODS_LDAP_* settings, and the threads that talk to the directory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.groups = {
            normalise_dn(group): Role(role)
            for group, role in parse_group_roles(settings.ldap_group_roles)
        }
        self._executor: ThreadPoolExecutor | None = None

    @classmethod
    def for_context(cls, context: Context) -> Self:
        return cls(context.settings)

    @property
    def configured(self) -> bool:
        return bool(self.settings.ldap_url)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def authenticate(self, username: str, password: str) -> DirectoryUser | None:
        """The account if the password is right, None if not (or no such user, or several).

        Unavailable when the directory cannot be reached or refuses ODS's own account.
        """
        check_username(username)
        if not self.configured:
            raise Unavailable(
                f"{username!r} logs in through the directory, and this server has no LDAP "
                "login configured (ODS_LDAP_URL); an admin can set it up again."
            )
        if not password:
            # An empty password would make the bind an unauthenticated one, which succeeds.
            return None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(THREADS, thread_name_prefix="ods-ldap")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, self._authenticate, username, password
            )
        except (LDAPException, OSError) as exc:
            log.warning("LDAP login for %r: the directory failed: %s", username, one_line(exc))
            raise Unavailable(UNAVAILABLE) from None

    def _server(self) -> ldap3.Server:
        url = self.settings.ldap_url
        assert url is not None
        parts = urlsplit(url)
        host = parts.hostname or ""
        secure = parts.scheme.lower() == "ldaps"
        tls = None
        if secure or self.settings.ldap_starttls:
            ca_file = self.settings.ldap_ca_file
            context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            tls = VerifiedTls(context, host)
        return ldap3.Server(
            host,
            port=parts.port or (636 if secure else 389),
            use_ssl=secure,
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=self.settings.ldap_timeout,
        )

    def _connection(self, server: ldap3.Server, dn: str | None, password: str | None) -> Any:
        """An open connection, over TLS when configured, not yet bound."""
        connection = ldap3.Connection(
            server,
            user=dn,
            password=password,
            receive_timeout=self.settings.ldap_timeout,
            auto_referrals=False,
            raise_exceptions=False,
            read_only=True,
        )
        try:
            connection.open()
            if self.settings.ldap_starttls and not server.ssl:
                connection.start_tls()
        except BaseException:
            close(connection)
            raise
        return connection

    def _authenticate(self, username: str, password: str) -> DirectoryUser | None:
        server = self._server()
        found = self._find(server, username)
        if found is None:
            return None
        dn, groups = found
        user = self._connection(server, dn, password)
        try:
            if not user.bind():
                if user.result.get("result") != INVALID_CREDENTIALS:
                    log.warning("LDAP bind as %r refused: %s", dn, user.result.get("description"))
                return None
        finally:
            close(user)
        ranked = sorted(groups, key=lambda role: role.rank)
        return DirectoryUser(dn=dn, role=ranked[-1] if ranked else None)

    def _find(self, server: ldap3.Server, username: str) -> tuple[str, set[Role]] | None:
        """The user's DN and the roles of the mapped groups it belongs to, as ODS's
        service account sees them; None when not exactly one entry matches."""
        settings = self.settings
        service = self._connection(server, settings.ldap_bind_dn, settings.ldap_bind_password)
        try:
            if not service.bind():
                log.error(
                    "LDAP: the directory refused ODS_LDAP_BIND_DN %r: %s",
                    settings.ldap_bind_dn,
                    service.result.get("description"),
                )
                raise Unavailable(
                    "The directory refused this server's own account (ODS_LDAP_BIND_DN); "
                    "directory accounts cannot log in until an admin fixes it."
                )
            query = settings.ldap_user_filter.replace("{username}", escape_filter_chars(username))
            service.search(
                settings.ldap_user_base,
                query,
                search_scope=ldap3.SUBTREE,
                attributes=["memberOf"],
                size_limit=2,
            )
            outcome = service.result.get("result")
            entries = [item for item in service.response or [] if item["type"] == "searchResEntry"]
            if outcome not in (0, SIZE_LIMIT_EXCEEDED):
                log.error(
                    "LDAP: searching ODS_LDAP_USER_BASE %r failed: %s",
                    settings.ldap_user_base,
                    service.result.get("description"),
                )
                raise Unavailable(UNAVAILABLE)
            if len(entries) != 1 or outcome == SIZE_LIMIT_EXCEEDED:
                if entries:
                    log.warning("LDAP: %r matches several entries; refused", username)
                return None
            dn: str = entries[0]["dn"]
            member_of = entries[0]["attributes"].get("memberOf") or []
            roles = {self.groups[g] for g in map(normalise_dn, member_of) if g in self.groups}
            roles |= self._groups_naming(service, dn, roles)
            return dn, roles
        finally:
            close(service)

    def _groups_naming(self, service: Any, dn: str, known: set[Role]) -> set[Role]:
        """Roles of the mapped groups that list `dn` as a member, asked of each group."""
        member = escape_filter_chars(dn)
        query = f"(|(member={member})(uniqueMember={member}))"
        roles: set[Role] = set()
        for group, role in self.groups.items():
            if role in known or role in roles:
                continue
            service.search(group, query, search_scope=ldap3.BASE, attributes=["1.1"])
            if any(item["type"] == "searchResEntry" for item in service.response or []):
                roles.add(role)
        return roles
