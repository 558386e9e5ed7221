"""ODS_LDAP_* settings: parsed as documented, and a wrong one named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ods.core.config import ConfigError, Settings, env_names, load_settings, parse_group_roles

VARIABLES = sorted({name for field in Settings.model_fields.values() for name in env_names(field)})
COMPLETE = {
    "ODS_LDAP_URL": "ldaps://ldap.example.org",
    "ODS_LDAP_BIND_DN": "cn=ods,ou=services,dc=example,dc=org",
    "ODS_LDAP_BIND_PASSWORD": "a service passphrase",
    "ODS_LDAP_USER_BASE": "ou=people,dc=example,dc=org",
    "ODS_LDAP_GROUP_ROLES": "cn=ods-admins,ou=groups,dc=example,dc=org=admin",
}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*VARIABLES, "ODS_CONF"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return monkeypatch


def test_the_documented_example_from_an_ods_conf_file(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = tmp_path / "example-ca.pem"
    ca.write_text("a CA\n")
    conf = tmp_path / "ods.conf"
    conf.write_text(
        "ODS_LDAP_URL = ldap://ldap.example.org\n"
        "ODS_LDAP_STARTTLS = true\n"
        f"ODS_LDAP_CA_FILE = {ca}\n"
        "ODS_LDAP_BIND_DN = cn=ods,ou=services,dc=example,dc=org\n"
        "ODS_LDAP_BIND_PASSWORD = a service passphrase\n"
        "ODS_LDAP_USER_BASE = ou=people,dc=example,dc=org\n"
        "ODS_LDAP_GROUP_ROLES = cn=ods-admins,ou=groups,dc=example,dc=org=admin; "
        "cn=packagers,ou=groups,dc=example,dc=org=package_manager\n"
    )
    env.setenv("ODS_CONF", str(conf))
    settings = load_settings()
    assert settings.ldap_url == "ldap://ldap.example.org"
    assert settings.ldap_starttls is True
    assert settings.ldap_ca_file == ca
    assert settings.ldap_user_filter == "(uid={username})"
    assert settings.ldap_timeout == 10
    assert parse_group_roles(settings.ldap_group_roles) == [
        ("cn=ods-admins,ou=groups,dc=example,dc=org", "admin"),
        ("cn=packagers,ou=groups,dc=example,dc=org", "package_manager"),
    ]


def test_group_roles_split_at_the_last_equals_sign() -> None:
    value = " CN=ODS Admins,OU=Groups,DC=corp,DC=example=admin ;; cn=a\\=b,dc=x = read_only; "
    assert parse_group_roles(value) == [
        ("CN=ODS Admins,OU=Groups,DC=corp,DC=example", "admin"),
        ("cn=a\\=b,dc=x", "read_only"),
    ]


def test_without_a_url_nothing_else_is_required(env: pytest.MonkeyPatch) -> None:
    assert load_settings().ldap_url is None


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("ODS_LDAP_URL", "https://ldap.example.org", "ldap:// or ldaps://"),
        ("ODS_LDAP_URL", "ldap://", "no host"),
        ("ODS_LDAP_URL", "ldap://ldap.example.org:99999", "ODS_LDAP_URL: "),
        ("ODS_LDAP_URL", "ldap://ldap.example.org:port", "ODS_LDAP_URL: "),
        ("ODS_LDAP_BIND_PASSWORD", "", "required with ODS_LDAP_BIND_DN"),
        ("ODS_LDAP_USER_BASE", "", "required with ODS_LDAP_URL"),
        ("ODS_LDAP_GROUP_ROLES", "", "no directory user can log in"),
        ("ODS_LDAP_GROUP_ROLES", "cn=x,dc=example,dc=org=owner", "'owner'"),
        ("ODS_LDAP_GROUP_ROLES", "admin", "groupDN=role"),
        ("ODS_LDAP_USER_FILTER", "(uid=%s)", "{username}"),
        ("ODS_LDAP_USER_FILTER", "uid={username}", "parentheses"),
        ("ODS_LDAP_CA_FILE", "/nonexistent/ca.pem", "not a file"),
        ("ODS_LDAP_TIMEOUT", "0", "greater than or equal to 1"),
        ("ODS_LDAP_TIMEOUT", "1.5", "integer"),
    ],
)
def test_a_wrong_setting_is_named(
    env: pytest.MonkeyPatch, name: str, value: str, words: str
) -> None:
    for key, good in COMPLETE.items():
        env.setenv(key, good)
    env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{name}: "), message
    assert words in message


def test_starttls_is_refused_with_ldaps(env: pytest.MonkeyPatch) -> None:
    for key, good in COMPLETE.items():
        env.setenv(key, good)
    env.setenv("ODS_LDAP_STARTTLS", "true")
    with pytest.raises(ConfigError, match=r"^ODS_LDAP_STARTTLS: .*ldaps://"):
        load_settings()
