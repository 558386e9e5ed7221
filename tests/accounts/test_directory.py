"""Directory look-ups against a real slapd: groups to roles, refusals, injection, TLS, outages."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ods.accounts.directory import Directory, DirectoryUser
from ods.core.auth import Role
from ods.core.config import Settings, load_settings
from ods.core.errors import InvalidInput, Unavailable
from tests.helpers.services import free_port
from tests.helpers.slapd import (
    ADMINS,
    GROUP_ROLES,
    PACKAGERS,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PASSWORD,
    UNMAPPED,
    VIEWERS,
    Slapd,
)

PASSWORD = "directory passphrase"


def unique(name: str) -> str:
    """A uid of its own per test: the directory lives for the whole test run."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def ldap_settings(tmp_path: Path, server: Slapd, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ldap_url": server.url,
        "ldap_bind_dn": SERVICE_DN,
        "ldap_bind_password": SERVICE_PASSWORD,
        "ldap_user_base": PEOPLE,
        "ldap_group_roles": GROUP_ROLES,
        "ldap_ca_file": server.ca_file,
        "ldap_timeout": 1,
    }
    values.update(overrides)
    return load_settings(create_dirs=False, data_dir=tmp_path, **values)


@pytest.fixture
async def directory(tmp_path: Path, slapd_server: Slapd) -> AsyncIterator[Directory]:
    found = Directory(ldap_settings(tmp_path, slapd_server))
    yield found
    found.close()


@pytest.fixture
def listening_silently() -> Iterator[int]:
    """A port that accepts connections and never answers: a directory that hangs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


async def role_of(directory: Directory, uid: str) -> Role | None:
    found = await directory.authenticate(uid, PASSWORD)
    assert found is not None
    return found.role


@pytest.mark.parametrize(
    ("groups", "role"),
    [
        ((ADMINS,), Role.ADMIN),
        ((PACKAGERS,), Role.PACKAGE_MANAGER),
        ((ADMINS, PACKAGERS), Role.ADMIN),
        # groupOfUniqueNames: no memberOf, found by asking the group.
        ((VIEWERS,), Role.READ_ONLY),
        ((VIEWERS, PACKAGERS), Role.PACKAGE_MANAGER),
        ((UNMAPPED,), None),
        ((), None),
    ],
)
async def test_groups_map_to_the_highest_role(
    directory: Directory, slapd_server: Slapd, groups: tuple[str, ...], role: Role | None
) -> None:
    uid = unique("user")
    dn = slapd_server.add_user(uid, PASSWORD, groups)
    assert await directory.authenticate(uid, PASSWORD) == DirectoryUser(dn=dn, role=role)


async def test_a_group_change_shows_at_the_next_look_up(
    directory: Directory, slapd_server: Slapd
) -> None:
    uid = unique("mover")
    dn = slapd_server.add_user(uid, PASSWORD, (PACKAGERS,))
    assert await role_of(directory, uid) == Role.PACKAGE_MANAGER
    slapd_server.set_groups(dn, (ADMINS,))
    assert await role_of(directory, uid) == Role.ADMIN
    slapd_server.set_groups(dn, ())
    assert await role_of(directory, uid) is None


async def test_wrong_empty_and_unknown_are_refused(
    directory: Directory, slapd_server: Slapd
) -> None:
    uid = unique("user")
    slapd_server.add_user(uid, PASSWORD, (ADMINS,))
    assert await directory.authenticate(uid, "not the password") is None
    # The directory allows unauthenticated binds (a DN, no password): never sent.
    assert await directory.authenticate(uid, "") is None
    assert await directory.authenticate(unique("nobody"), PASSWORD) is None


@pytest.mark.parametrize("template", ["*", "{head}*", "*)(uid=*", "{uid})(uid=*", "{uid}*)(cn=*"])
async def test_usernames_cannot_change_the_filter(
    directory: Directory, slapd_server: Slapd, template: str
) -> None:
    uid = unique("victim")
    slapd_server.add_user(uid, PASSWORD, (ADMINS,))
    username = template.format(uid=uid, head=uid[:-3])
    assert await directory.authenticate(username, PASSWORD) is None


@pytest.mark.parametrize("username", ["alice\x00", "\x00", "ali\nce", "alice\u200b"])
async def test_usernames_with_control_characters_are_refused(
    directory: Directory, username: str
) -> None:
    with pytest.raises(InvalidInput, match="control characters"):
        await directory.authenticate(username, PASSWORD)


async def test_active_directory_style_filter(
    tmp_path: Path, slapd_server: Slapd, directory: Directory
) -> None:
    uid = unique("e.smith")
    account = unique("ESMITH")
    dn = slapd_server.add_user(uid, PASSWORD, (PACKAGERS,), sam_account_name=account)
    ad = Directory(
        ldap_settings(tmp_path, slapd_server, ldap_user_filter="(sAMAccountName={username})")
    )
    try:
        expected = DirectoryUser(dn=dn, role=Role.PACKAGE_MANAGER)
        assert await ad.authenticate(account.lower(), PASSWORD) == expected
        assert await ad.authenticate(uid, PASSWORD) is None
    finally:
        ad.close()
    assert await directory.authenticate(account, PASSWORD) is None


@pytest.mark.parametrize("how", ["starttls", "ldaps"])
async def test_tls_with_the_directory_ca(tmp_path: Path, slapd_server: Slapd, how: str) -> None:
    uid = unique("tls")
    dn = slapd_server.add_user(uid, PASSWORD, (ADMINS,))
    url = slapd_server.ldaps_url if how == "ldaps" else slapd_server.url
    secure = Directory(
        ldap_settings(tmp_path, slapd_server, ldap_url=url, ldap_starttls=how == "starttls")
    )
    untrusting = Directory(
        ldap_settings(
            tmp_path, slapd_server, ldap_url=url, ldap_starttls=how == "starttls", ldap_ca_file=None
        )
    )
    try:
        assert await secure.authenticate(uid, PASSWORD) == DirectoryUser(dn=dn, role=Role.ADMIN)
        # Without the CA the certificate is not trusted: no password goes out.
        with pytest.raises(Unavailable, match="certificate"):
            await untrusting.authenticate(uid, PASSWORD)
    finally:
        secure.close()
        untrusting.close()


async def test_a_wrong_service_password_is_unavailable_not_refused(
    tmp_path: Path, slapd_server: Slapd
) -> None:
    uid = unique("user")
    slapd_server.add_user(uid, PASSWORD, (ADMINS,))
    directory = Directory(ldap_settings(tmp_path, slapd_server, ldap_bind_password="wrong"))
    try:
        with pytest.raises(Unavailable, match="ODS_LDAP_BIND_DN"):
            await directory.authenticate(uid, PASSWORD)
    finally:
        directory.close()


async def test_a_stopped_directory_is_unavailable(tmp_path: Path, slapd_server: Slapd) -> None:
    nothing_there = f"ldap://127.0.0.1:{free_port()}"
    directory = Directory(ldap_settings(tmp_path, slapd_server, ldap_url=nothing_there))
    try:
        with pytest.raises(Unavailable, match="local accounts still can"):
            await directory.authenticate("someone", PASSWORD)
    finally:
        directory.close()


async def test_a_hanging_directory_times_out_without_blocking_the_loop(
    tmp_path: Path, slapd_server: Slapd, listening_silently: int
) -> None:
    silent = f"ldap://127.0.0.1:{listening_silently}"
    directory = Directory(ldap_settings(tmp_path, slapd_server, ldap_url=silent))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    try:
        with pytest.raises(Unavailable):
            await directory.authenticate("someone", PASSWORD)
    finally:
        ticker.cancel()
        directory.close()
    took = time.monotonic() - started
    assert 0.9 <= took < 5
    # The loop ran on while the directory was waited for.
    assert ticks >= 10


async def test_a_directory_account_without_ldap_configured_is_unavailable(
    tmp_path: Path,
) -> None:
    """A user the directory made stays `source: ldap` when LDAP login is switched off."""
    directory = Directory(load_settings(create_dirs=False, data_dir=tmp_path))
    assert not directory.configured
    with pytest.raises(Unavailable, match="ODS_LDAP_URL"):
        await directory.authenticate("someone", PASSWORD)


async def test_a_name_that_matches_several_entries_is_refused(
    tmp_path: Path, slapd_server: Slapd
) -> None:
    name = unique("twin")
    slapd_server.add_user(name, PASSWORD, (ADMINS,))
    slapd_server.add_user(unique("other"), PASSWORD, (ADMINS,), sam_account_name=name)
    either = "(|(uid={username})(sAMAccountName={username}))"
    directory = Directory(ldap_settings(tmp_path, slapd_server, ldap_user_filter=either))
    try:
        assert await directory.authenticate(name, PASSWORD) is None
    finally:
        directory.close()
