"""The console and the admin API stay at parity: every operation under /api/admin/
and /api/auth/ has a place in the console, and the console calls nothing else.

When an operation is added to the API, this fails until the console gives it a
place and CONSOLE below says where.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ods.app import create_app
from ods.core.config import load_settings
from ods.web.console import WEBUI_DIR
from tests.helpers.api import TEST_DATABASE_KEY

PREFIXES = ("/api/admin/", "/api/auth/")

# operation_id: where an admin finds it in the console.
CONSOLE: dict[str, str] = {
    "login": "Login form",
    "change_password": "First-login password page; Change password in the top bar",
    "logout": "Log out in the top bar",
    "me": "Console start: who is logged in, role, whether the password must change",
    "get_about": "Admin tab, Server settings (and the server name in the top bar)",
    "update_about": "Admin tab, Server settings, Edit dialog",
    "get_system": "Admin tab, System card (refreshed every 3 s)",
    "list_events": "Events tab (and the recent events the live stream starts from)",
    "stream_events": "Live indicator in the top bar; Events tab; live refresh of every tab",
    "list_event_kinds": "Events tab, Kind filter (each kind's description) and event data fields",
    "create_package": "Packages tab, Upload card; Replace dialog",
    "list_packages": "Packages tab, package list with search and stage/status filters",
    "get_package": "Packages tab, Details dialog with chunk digests",
    "change_package_stage": "Packages tab, Stage dialog",
    "delete_package": "Packages tab, Delete confirmation",
    "retry_package": "Packages tab, Retry button on a Failed package's row, and its confirmation",
    "list_registered_ods": "Network tab, mesh picture and Registered servers",
    "register_ods": "Network tab, Register with another server",
    "unregister_ods": "Network tab, Unregister confirmation",
    "get_trust": "Network tab, Trust card: this server's key fingerprint, policy, pinned keys",
    "set_trust": "Network tab, Trust card, Edit policy dialog",
    "forget_pinned_key": "Network tab, Trust card, Unpin confirmation",
    "list_users": "Users & tokens tab, Users",
    "create_user": "Users & tokens tab, Add user dialog",
    "get_user": "Users & tokens tab, Edit user dialog (loads the user)",
    "update_user": "Users & tokens tab, Edit user dialog",
    "delete_user": "Users & tokens tab, Delete user confirmation",
    "list_tokens": "Users & tokens tab, API tokens",
    "create_token": "Users & tokens tab, Create token (the secret shown once)",
    "revoke_token": "Users & tokens tab, Revoke confirmation",
    "list_webhooks": "Notifications tab, Webhooks (each row's last delivery from its log)",
    "create_webhook": "Notifications tab, Add webhook dialog",
    "get_webhook": "Notifications tab, Edit webhook dialog (loads the webhook)",
    "update_webhook": "Notifications tab, Edit webhook dialog",
    "delete_webhook": "Notifications tab, Delete webhook confirmation",
    "test_webhook": "Notifications tab, Send test on a webhook's row (the outcome in a banner)",
    "list_webhook_deliveries": "Notifications tab, Deliveries dialog (paged); Last delivery column",
    "redeliver_webhook_delivery": "Notifications tab, Deliveries dialog, Redeliver on a row",
    "list_email_subscriptions": "Notifications tab, Email subscriptions",
    "create_email_subscription": "Notifications tab, Add subscription dialog",
    "get_email_subscription": "Notifications tab, Edit email subscription dialog (loads it)",
    "update_email_subscription": "Notifications tab, Edit email subscription dialog",
    "delete_email_subscription": "Notifications tab, Delete subscription confirmation",
    "test_email_subscription": "Notifications tab, Send test mail on a subscription's row",
    "list_email_deliveries": "Notifications tab, Mail log dialog",
    "get_jamf_integration": "Admin tab, Integrations card: Jamf Pro settings, records, last sync",
    "put_jamf_integration": "Admin tab, Integrations card, Set up / Edit Jamf Pro dialog",
    "check_jamf_integration": "Admin tab, Integrations card, Check credentials",
    "reconcile_jamf_integration": "Admin tab, Integrations card, Find drift and Repair drift",
}

# Operations that are another operation under a second, compatible path; the
# console uses the one they alias.
ALIASES: dict[str, str] = {"upload_package": "create_package"}

# The console's API helpers (src/ods/webui/api.js) and the method each sends.
HELPERS = {
    "get": "GET",
    "stream": "GET",
    "post": "POST",
    "upload": "POST",
    "put": "PUT",
    "patch": "PATCH",
    "del": "DELETE",
}
CALL = re.compile(r"\bapi\.(\w+)\(\s*(['\"`])(/api/.*?)\2")
TEMPLATE = re.compile(r"\$\{[^}]*\}")
PARAMETER = re.compile(r"\{[^}]*\}")

Operation = tuple[str, str]  # (method, path with {} for each parameter)


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("parity"), database_key=TEST_DATABASE_KEY
    )
    built: dict[str, Any] = create_app(settings).openapi()
    return built


@pytest.fixture(scope="module")
def operations(schema: dict[str, Any]) -> dict[str, Operation]:
    """operation_id: (method, path) of every admin and auth operation."""
    return {
        operation["operationId"]: (method.upper(), PARAMETER.sub("{}", path))
        for path, item in schema["paths"].items()
        if path.startswith(PREFIXES)
        for method, operation in item.items()
    }


def console_calls() -> set[Operation]:
    """(method, path) of every API call in the console's own modules."""
    found = set()
    for source in sorted(WEBUI_DIR.glob("*.js")):
        for helper, _, path in CALL.findall(source.read_text(encoding="utf-8")):
            assert helper in HELPERS, f"{source.name}: api.{helper}() is not an API helper"
            found.add((HELPERS[helper], operation_path(path)))
    return found


def operation_path(called: str) -> str:
    """The path a call's URL template names, with {} for each path parameter.

    `${…}` after a slash is a path parameter (`/packages/${id}/retry`); anything
    else starts a query suffix (`/events${query}`), cut off like `?…`.
    """
    called = called.partition("?")[0]
    path, start = "", 0
    for template in TEMPLATE.finditer(called):
        path += called[start : template.start()]
        if not path.endswith("/"):
            return path
        path += "{}"
        start = template.end()
    return path + called[start:]


def test_every_operation_has_a_place_in_the_console(operations: dict[str, Operation]) -> None:
    placed = set(CONSOLE) | set(ALIASES)
    missing = sorted(set(operations) - placed)
    assert missing == [], f"operations without a place in the console: {missing}"
    stale = sorted(placed - set(operations))
    assert stale == [], f"CONSOLE or ALIASES name operations that do not exist: {stale}"


def test_every_placed_operation_is_called_by_the_console(
    operations: dict[str, Operation],
) -> None:
    calls = console_calls()
    uncalled = {
        operation_id: operations[operation_id]
        for operation_id in CONSOLE
        if operations[operation_id] not in calls
    }
    assert uncalled == {}, "the console's JavaScript never calls these operations"


def test_the_console_calls_nothing_the_api_does_not_do(
    operations: dict[str, Operation],
) -> None:
    unknown = console_calls() - set(operations.values())
    assert unknown == set(), "the console calls paths that are no admin or auth operation"


def test_aliases_are_the_same_operation(schema: dict[str, Any]) -> None:
    by_id = {
        operation["operationId"]: (method, operation)
        for item in schema["paths"].values()
        for method, operation in item.items()
    }
    for alias, target in ALIASES.items():
        alias_method, alias_operation = by_id[alias]
        target_method, target_operation = by_id[target]
        assert alias_method == target_method, alias
        assert alias_operation.get("requestBody") == target_operation.get("requestBody"), alias
        assert alias_operation.get("parameters") == target_operation.get("parameters"), alias
        assert alias_operation["responses"] == target_operation["responses"], alias


def test_the_console_sources_are_found() -> None:
    assert (WEBUI_DIR / "index.html").is_file()
    assert len(console_calls()) >= len(CONSOLE)
    assert Path(WEBUI_DIR / "api.js").is_file()
