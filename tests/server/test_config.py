"""Settings: environment, the ODS_CONF file, MySQL settings, secrets, and clear errors."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from ods.core.config import ConfigError, Settings, env_names, load_settings, parse_size

VARIABLES = sorted({name for field in Settings.model_fields.values() for name in env_names(field)})
GOOD_KEY = base64.b64encode(b"d" * 32).decode()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without ODS settings; DATA_DIR in tmp_path."""
    for name in [*VARIABLES, "ODS_CONF"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return monkeypatch


def conf_file(tmp_path: Path, env: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "ods.conf"
    path.write_text(text, encoding="utf-8")
    env.setenv("ODS_CONF", str(path))
    return path


def config_error(**overrides: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(**overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = load_settings()
    data_dir = (tmp_path / "data").resolve()
    assert settings.data_dir == data_dir
    # The file every version made and the docs name: another name would start an
    # empty database on upgrade.
    assert settings.database_url == f"sqlite+aiosqlite:///{data_dir / 'ods.db'}"
    assert settings.is_sqlite
    assert settings.share_dir == data_dir / "share"
    assert settings.staging_dir == data_dir / "staging"
    assert settings.share_dir.is_dir()
    assert settings.staging_dir.is_dir()
    assert settings.redis_url is None
    assert settings.debug is False
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.max_upload_size == 20 * 1024**3
    assert settings.token_ttl_hours == 12
    assert settings.admin_password is None
    assert len(settings.database_key_bytes) == 32


def test_data_dir_defaults_to_the_per_user_data_dir(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.delenv("DATA_DIR")
    assert load_settings().data_dir == (tmp_path / "xdg" / "ods").resolve()


def test_environment_variables(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("DATABASE_URL", "postgresql://ods:secret@db.example.com/ods")
    env.setenv("REDIS_URL", "redis://redis:6379/0")
    env.setenv("UPLOAD_STAGING_DIR", str(tmp_path / "staging"))
    env.setenv("DEBUG", "true")
    env.setenv("ODS_HOST", "0.0.0.0")
    env.setenv("ODS_PORT", "9000")
    env.setenv("ODS_MAX_UPLOAD_SIZE", "512M")
    env.setenv("ODS_ACCEL_REDIRECT", "/_ods_share/")
    env.setenv("ODS_SHARE_REQUIRES_LOGIN", "1")
    env.setenv("ODS_TOKEN_TTL_HOURS", "24")
    env.setenv("ODS_LOGIN_MAX_FAILURES", "10")
    env.setenv("ODS_LOGIN_LOCKOUT_SECONDS", "60")
    env.setenv("ODS_ADMIN_PASSWORD", "chosen passphrase")
    env.setenv("SECRET_KEY", "from the environment")
    env.setenv("DATABASE_KEY", GOOD_KEY)
    settings = load_settings()
    assert settings.database_url == "postgresql+asyncpg://ods:secret@db.example.com/ods"
    assert not settings.is_sqlite
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.staging_dir == (tmp_path / "staging").resolve()
    assert settings.staging_dir.is_dir()
    assert settings.debug is True
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)
    assert settings.max_upload_size == 512 * 1024**2
    assert settings.accel_redirect == "/_ods_share/"
    assert settings.share_requires_login is True
    assert settings.token_ttl_hours == 24
    assert settings.login_max_failures == 10
    assert settings.login_lockout_seconds == 60
    assert settings.admin_password == "chosen passphrase"
    assert settings.secret_key == "from the environment"
    assert settings.database_key == GOOD_KEY
    assert not (tmp_path / "data" / "secrets").exists()


def test_lowercase_environment_names_are_not_settings(env: pytest.MonkeyPatch) -> None:
    env.setenv("ods_port", "9000")
    assert load_settings().port == 8000


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///srv/ods/ods.db", "sqlite+aiosqlite:///srv/ods/ods.db"),
        ("mysql://u:p@db/ods", "mysql+asyncmy://u:p@db/ods"),
        ("mariadb://u:p@db/ods", "mysql+asyncmy://u:p@db/ods"),
        ("mysql+pymysql://u:p@db/ods", "mysql+asyncmy://u:p@db/ods"),
        ("postgres://u:p@db/ods", "postgresql+asyncpg://u:p@db/ods"),
        ("postgresql+asyncpg://u:p@db/ods", "postgresql+asyncpg://u:p@db/ods"),
    ],
)
def test_database_urls_get_the_async_driver(
    env: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    env.setenv("DATABASE_URL", url)
    assert load_settings().database_url == expected


@pytest.mark.parametrize("url", ["oracle://u:p@db/ods", "just a path", "/srv/ods.db"])
def test_unsupported_database_url(env: pytest.MonkeyPatch, url: str) -> None:
    env.setenv("DATABASE_URL", url)
    assert config_error().startswith("DATABASE_URL: ")


# The ODS_CONF file


def test_conf_file_with_comments_quotes_and_spacing(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf_file(
        tmp_path,
        env,
        "# ODS settings\n"
        "\n"
        "DATABASE_URL = 'postgresql://ods:p#ss@db/ods'\n"
        '   REDIS_URL="redis://redis:6379/1"   \n'
        "ODS_MAX_UPLOAD_SIZE=20G\n"
        "  # indented comment\n"
        "DEBUG = yes\n"
        "ODS_ADMIN_PASSWORD = \"has = sign and 'quotes'\"\n"
        "SECRET_KEY = not-quoted value with spaces\n",
    )
    settings = load_settings()
    assert settings.database_url == "postgresql+asyncpg://ods:p#ss@db/ods"
    assert settings.redis_url == "redis://redis:6379/1"
    assert settings.max_upload_size == 20 * 1024**3
    assert settings.debug is True
    assert settings.admin_password == "has = sign and 'quotes'"
    assert settings.secret_key == "not-quoted value with spaces"


def test_a_hash_after_a_value_is_part_of_it(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf_file(
        tmp_path,
        env,
        "DEBUG = True\n"
        "MYSQL_SERVER = db\n"
        "MYSQL_DATABASE = ods\n"
        "MYSQL_USER = ods\n"
        "MYSQL_PASSWORD = p#ss # not a comment\n",
    )
    settings = load_settings()
    assert settings.debug is True
    assert settings.database_url == "mysql+asyncmy://ods:p%23ss%20%23%20not%20a%20comment@db/ods"


@pytest.mark.parametrize("line", ["SECRET_KEY", "= value", "export SECRET_KEY=x", "1KEY = x"])
def test_malformed_conf_lines(env: pytest.MonkeyPatch, tmp_path: Path, line: str) -> None:
    path = conf_file(tmp_path, env, "# first line\n" + line + "\n")
    assert config_error() == f"ODS_CONF: {path} line 2: expected KEY = value"


def test_conf_file_that_is_not_text(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = conf_file(tmp_path, env, "")
    path.write_bytes(b"DEBUG = \xff\xfe\n")
    assert config_error().startswith("ODS_CONF: ")


def test_environment_wins_over_the_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf_file(tmp_path, env, "ODS_PORT = 9000\nODS_HOST = 0.0.0.0\n")
    env.setenv("ODS_PORT", "9100")
    settings = load_settings()
    assert settings.port == 9100
    assert settings.host == "0.0.0.0"


def test_environment_alias_wins_over_the_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf_file(tmp_path, env, "REDIS_URL = redis://from-file:6379/0\n")
    env.setenv("CELERY_BROKER_URL", "redis://from-env:6379/0")
    assert load_settings().redis_url == "redis://from-env:6379/0"


def test_file_data_dir_is_used(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.delenv("DATA_DIR")
    conf_file(tmp_path, env, f"DATA_DIR = {tmp_path / 'from-file'}\n")
    settings = load_settings()
    assert settings.data_dir == (tmp_path / "from-file").resolve()
    assert (tmp_path / "from-file" / "secrets" / "database_key").is_file()


@pytest.mark.parametrize(
    "line",
    [
        "__import__('os').system('touch {marker}')",
        "import os; os.system('touch {marker}')",
        "exec(\"open('{marker}', 'w')\")",
    ],
)
def test_python_in_the_file_is_a_parse_error_and_never_runs(
    env: pytest.MonkeyPatch, tmp_path: Path, line: str
) -> None:
    marker = tmp_path / "ran"
    path = conf_file(tmp_path, env, "DEBUG = false\n" + line.format(marker=marker) + "\n")
    message = config_error()
    assert message.startswith("ODS_CONF: ")
    assert str(path) in message
    assert "line 2" in message
    assert not marker.exists()


def test_python_as_a_value_is_only_text(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    conf_file(tmp_path, env, f"DEBUG = __import__('os').system('touch {marker}')\n")
    assert config_error().startswith("DEBUG: ")
    assert not marker.exists()
    conf_file(tmp_path, env, f"ODS_ADMIN_PASSWORD = __import__('os').system('touch {marker}')\n")
    assert load_settings().admin_password == f"__import__('os').system('touch {marker}')"
    assert not marker.exists()


def test_unknown_key_in_the_file_is_named(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf_file(tmp_path, env, "DEBUG = false\nSQLALCHEMY_DATABASE_URI = sqlite://\n")
    message = config_error()
    assert message.startswith("SQLALCHEMY_DATABASE_URI: ")
    assert "unknown setting" in message


def test_missing_conf_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("ODS_CONF", str(tmp_path / "absent.conf"))
    message = config_error()
    assert message.startswith("ODS_CONF: ")
    assert "absent.conf" in message


def test_bad_value_in_the_file_is_named(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf_file(tmp_path, env, "ODS_PORT = eighty\n")
    assert config_error().startswith("ODS_PORT: ")


# MySQL settings of the original


def test_mysql_settings_make_a_url_with_the_password_quoted(env: pytest.MonkeyPatch) -> None:
    env.setenv("MYSQL_SERVER", "db.example.com:3306")
    env.setenv("MYSQL_DATABASE", "ods")
    env.setenv("MYSQL_USER", "ods user")
    env.setenv("MYSQL_PASSWORD", "p@ss:w/rd#?%")
    url = load_settings().database_url
    assert url == "mysql+asyncmy://ods%20user:p%40ss%3Aw%2Frd%23%3F%25@db.example.com:3306/ods"
    assert url is not None
    parsed = make_url(url)
    assert parsed.username == "ods user"
    assert parsed.password == "p@ss:w/rd#?%"
    assert (parsed.host, parsed.port, parsed.database) == ("db.example.com", 3306, "ods")


def test_mysql_settings_without_a_password(env: pytest.MonkeyPatch) -> None:
    env.setenv("MYSQL_SERVER", "db")
    env.setenv("MYSQL_DATABASE", "ods")
    env.setenv("MYSQL_USER", "ods")
    assert load_settings().database_url == "mysql+asyncmy://ods:@db/ods"


def test_database_url_wins_over_mysql_settings(env: pytest.MonkeyPatch) -> None:
    env.setenv("MYSQL_SERVER", "db")
    env.setenv("MYSQL_DATABASE", "ods")
    env.setenv("MYSQL_USER", "ods")
    env.setenv("DATABASE_URL", "postgresql://u:p@pg/ods")
    assert load_settings().database_url == "postgresql+asyncpg://u:p@pg/ods"


@pytest.mark.parametrize("missing", ["MYSQL_SERVER", "MYSQL_DATABASE", "MYSQL_USER"])
def test_incomplete_mysql_settings_name_what_is_missing(
    env: pytest.MonkeyPatch, missing: str
) -> None:
    for name in ("MYSQL_SERVER", "MYSQL_DATABASE", "MYSQL_USER", "MYSQL_PASSWORD"):
        if name != missing:
            env.setenv(name, "x")
    assert config_error().startswith(f"{missing}: ")


def test_mysql_settings_from_the_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf_file(
        tmp_path,
        env,
        "MYSQL_SERVER = db\nMYSQL_DATABASE = ods\nMYSQL_USER = ods\nMYSQL_PASSWORD = 'a b'\n",
    )
    assert load_settings().database_url == "mysql+asyncmy://ods:a%20b@db/ods"


# Redis


def test_celery_broker_url_is_an_alias_of_redis_url(env: pytest.MonkeyPatch) -> None:
    env.setenv("CELERY_BROKER_URL", "redis://broker:6379/0")
    assert load_settings().redis_url == "redis://broker:6379/0"
    env.setenv("REDIS_URL", "redis://redis:6379/2")
    assert load_settings().redis_url == "redis://redis:6379/2"


def test_celery_broker_url_in_the_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf_file(tmp_path, env, "CELERY_BROKER_URL = redis://broker:6379/0\n")
    assert load_settings().redis_url == "redis://broker:6379/0"


# Secrets


def test_secrets_are_generated_once_with_mode_0600(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    first = load_settings()
    secrets_dir = tmp_path / "data" / "secrets"
    assert stat.S_IMODE(secrets_dir.stat().st_mode) & 0o077 == 0
    for name in ("secret_key", "database_key"):
        path = secrets_dir / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in secrets_dir.iterdir()) == ["database_key", "secret_key"]
    assert first.secret_key
    assert len(base64.b64decode(first.database_key or "", validate=True)) == 32
    assert first.secret_key != first.database_key

    second = load_settings()
    assert (second.secret_key, second.database_key) == (first.secret_key, first.database_key)
    assert (secrets_dir / "database_key").read_text().strip() == first.database_key


def test_secrets_differ_between_data_dirs(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    one = load_settings()
    env.setenv("DATA_DIR", str(tmp_path / "other"))
    other = load_settings()
    assert one.database_key != other.database_key
    assert one.secret_key != other.secret_key


def test_create_dirs_false_writes_nothing(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = load_settings(create_dirs=False)
    assert settings.database_key is None
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "value",
    [
        base64.b64encode(b"short").decode(),
        base64.b64encode(b"k" * 33).decode(),
        "not base64 at all!",
        "====",
    ],
)
def test_bad_database_key_is_named(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("DATABASE_KEY", value)
    message = config_error()
    assert message.startswith("DATABASE_KEY: ")
    assert value not in message


def test_bad_database_key_in_the_secrets_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    load_settings()
    (tmp_path / "data" / "secrets" / "database_key").write_text("dG9vIHNob3J0\n")
    assert config_error().startswith("DATABASE_KEY: ")


def test_empty_secrets_file_is_named(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    load_settings()
    (tmp_path / "data" / "secrets" / "secret_key").write_text("")
    message = config_error()
    assert message.startswith("SECRET_KEY: ")
    assert "empty" in message


def test_unwritable_data_dir_is_named(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "occupied").write_text("a file, not a directory")
    env.setenv("DATA_DIR", str(tmp_path / "occupied"))
    assert config_error().startswith("DATA_DIR: ")


# Sizes and numbers


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1048576", 1048576),
        ("10K", 10 * 1024),
        ("10k", 10 * 1024),
        ("512M", 512 * 1024**2),
        ("20G", 20 * 1024**3),
        ("20GB", 20 * 1024**3),
        ("20GiB", 20 * 1024**3),
        (" 20 G ", 20 * 1024**3),
        ("1.5T", int(1.5 * 1024**4)),
    ],
)
def test_sizes(env: pytest.MonkeyPatch, text: str, size: int) -> None:
    assert parse_size(text) == size
    env.setenv("ODS_MAX_UPLOAD_SIZE", text)
    assert load_settings().max_upload_size == size


@pytest.mark.parametrize("text", ["lots", "-1G", "20X", "G", "", "0"])
def test_bad_max_upload_size_is_named(env: pytest.MonkeyPatch, text: str) -> None:
    env.setenv("ODS_MAX_UPLOAD_SIZE", text)
    assert config_error().startswith("ODS_MAX_UPLOAD_SIZE: ")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ODS_PORT", "http"),
        ("ODS_PORT", "0"),
        ("ODS_PORT", "70000"),
        ("ODS_TOKEN_TTL_HOURS", "0"),
        ("ODS_LOGIN_MAX_FAILURES", "0"),
        ("ODS_LOGIN_LOCKOUT_SECONDS", "-5"),
        ("DEBUG", "maybe"),
        ("ODS_SHARE_REQUIRES_LOGIN", "sometimes"),
        ("ODS_ACCEL_REDIRECT", "_ods_share"),
    ],
)
def test_bad_values_are_named(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    assert config_error().startswith(f"{name}: ")


def test_bad_keyword_overrides_name_the_variable(env: pytest.MonkeyPatch) -> None:
    assert config_error(max_upload_size="lots").startswith("ODS_MAX_UPLOAD_SIZE: ")
    assert config_error(port=0).startswith("ODS_PORT: ")


def test_every_setting_is_described() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert env_names(field), name
    assert "ODS_CONF" not in VARIABLES
    assert {"SECRET_KEY", "DATABASE_KEY", "DATABASE_URL", "MYSQL_SERVER", "MYSQL_DATABASE"} <= set(
        VARIABLES
    )
    assert {"MYSQL_USER", "MYSQL_PASSWORD", "REDIS_URL", "CELERY_BROKER_URL", "DATA_DIR"} <= set(
        VARIABLES
    )
    assert {"UPLOAD_STAGING_DIR", "DEBUG"} <= set(VARIABLES)
