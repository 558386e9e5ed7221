"""A real OpenLDAP slapd for the LDAP login tests, on free loopback ports.

slapd comes from Debian's `slapd` package and runs from a temp dir with a
slapd.conf: an mdb database for dc=example,dc=org, the memberof overlay (so
groupOfNames members get `memberOf`, as in Active Directory), a small schema
adding Active Directory's `sAMAccountName`, and TLS with a CA made here. It
listens with ldap:// (StartTLS offered) and ldaps://. The directory holds a
service account that may read entries (not passwords), groups, and users that
the tests add with `add_user`, each test its own.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import services
from tests.helpers.tls import ca_and_server_certificate

with warnings.catch_warnings():
    # ldap3 2.9 reads pyasn1 names that pyasn1 0.6.1 deprecated, at import.
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3
    from ldap3.utils.conv import escape_filter_chars

BASE = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "root secret"
SERVICE_DN = f"cn=ods,ou=services,{BASE}"
SERVICE_PASSWORD = "service secret"
PEOPLE = f"ou=people,{BASE}"
ADMINS = f"cn=ods-admins,ou=groups,{BASE}"
PACKAGERS = f"cn=packagers,ou=groups,{BASE}"
# groupOfUniqueNames: no memberOf; found by asking the group.
VIEWERS = f"cn=viewers,ou=groups,{BASE}"
UNMAPPED = f"cn=staff,ou=groups,{BASE}"
GROUP_ROLES = f"{ADMINS}=admin; {PACKAGERS}=package_manager; {VIEWERS}=read_only"

AD_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.55555.1.1 NAME 'odsTestAdUser' AUXILIARY MAY sAMAccountName )
"""


def slapd_conf(base: Path, ca: Path, cert: Path, key: Path) -> str:
    return f"""\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include {base / "ad.schema"}
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {base / "slapd.pid"}
argsfile {base / "slapd.args"}
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
# A bind with a DN and no password succeeds, as an anonymous one: the "unauthenticated
# bind" of RFC 4513 that some directories allow. ODS must never send one.
allow bind_anon_dn

database mdb
suffix "{BASE}"
rootdn "{ROOT_DN}"
rootpw "{ROOT_PASSWORD}"
directory {base / "data"}
maxsize 16777216

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE

access to attrs=userPassword
    by anonymous auth
    by * none
access to *
    by dn.exact="{SERVICE_DN}" read
    by * none
"""


@dataclass(frozen=True)
class Slapd:
    """A running slapd: where it listens, the CA its certificate comes from."""

    port: int
    tls_port: int
    ca_file: Path

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @contextlib.contextmanager
    def root(self) -> Iterator[Any]:
        """A connection bound as the directory's root (ldap3's add and modify are untyped)."""
        connection = ldap3.Connection(
            ldap3.Server("127.0.0.1", port=self.port, get_info=ldap3.NONE, connect_timeout=5),
            ROOT_DN,
            ROOT_PASSWORD,
            receive_timeout=10,
            raise_exceptions=True,
        )
        connection.bind()
        try:
            yield connection
        finally:
            connection.unbind()

    def add_user(
        self,
        uid: str,
        password: str,
        groups: tuple[str, ...] = (),
        sam_account_name: str | None = None,
    ) -> str:
        """A user under ou=people in these groups; its DN."""
        dn = f"uid={uid},{PEOPLE}"
        classes = ["inetOrgPerson"] + (["odsTestAdUser"] if sam_account_name else [])
        attributes: dict[str, object] = {"cn": uid, "sn": uid, "uid": uid}
        attributes["userPassword"] = password
        if sam_account_name:
            attributes["sAMAccountName"] = sam_account_name
        with self.root() as root:
            root.add(dn, classes, attributes)
        self.set_groups(dn, groups)
        return dn

    def set_groups(self, dn: str, groups: tuple[str, ...]) -> None:
        """Make `dn` a member of exactly these groups (of the four above)."""
        with self.root() as root:
            for group in (ADMINS, PACKAGERS, VIEWERS, UNMAPPED):
                attribute = "uniqueMember" if group == VIEWERS else "member"
                root.search(group, f"({attribute}={escape_filter_chars(dn)})",
                            search_scope=ldap3.BASE, attributes=["1.1"])  # fmt: skip
                member = bool(root.entries)
                if (group in groups) != member:
                    change = ldap3.MODIFY_ADD if group in groups else ldap3.MODIFY_DELETE
                    root.modify(group, {attribute: [(change, [dn])]})

    def load(self) -> None:
        """The tree, the service account and the groups (each with a placeholder member:
        groupOfNames needs one)."""
        placeholder = f"cn=nobody,{BASE}"
        with self.root() as root:
            root.add(BASE, ["dcObject", "organization"], {"dc": "example", "o": "Example"})
            root.add(placeholder, ["organizationalRole"], {"cn": "nobody"})
            for unit in ("people", "groups", "services"):
                root.add(f"ou={unit},{BASE}", ["organizationalUnit"], {"ou": unit})
            root.add(
                SERVICE_DN,
                ["organizationalRole", "simpleSecurityObject"],
                {"cn": "ods", "userPassword": SERVICE_PASSWORD},
            )
            for group in (ADMINS, PACKAGERS, UNMAPPED):
                root.add(group, ["groupOfNames"], {"member": [placeholder]})
            root.add(VIEWERS, ["groupOfUniqueNames"], {"uniqueMember": [placeholder]})


def answers(port: int) -> bool:
    """True once slapd accepts connections (and so, soon after, answers them)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def slapd() -> Iterator[Slapd]:
    """A running, loaded slapd; stopped and removed after."""
    binary = services.require(services.which("slapd"), "slapd", "slapd")
    run_as = services.RunAs.for_server(None, "slapd")
    with services.temp_dir("ods-test-slapd-", run_as) as base:
        (base / "data").mkdir()
        (base / "ad.schema").write_text(AD_SCHEMA)
        ca, cert, key = ca_and_server_certificate(base)
        conf = base / "slapd.conf"
        conf.write_text(slapd_conf(base, ca, cert, key))
        log = base / "slapd.log"
        ports: dict[int, int] = {}

        def start_on(port: int) -> services.Process:
            ports[port] = tls_port = services.free_port()
            urls = f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{tls_port}/"
            command = [binary, "-f", str(conf), "-h", urls, "-d", "0"]
            return services.start(
                command, base, log, signal.SIGTERM, lambda: answers(port), "slapd", run_as
            )

        process, port = services.start_on_free_port(start_on)
        try:
            server = Slapd(port=port, tls_port=ports[port], ca_file=ca)
            server.load()
            yield server
        finally:
            process.stop()
