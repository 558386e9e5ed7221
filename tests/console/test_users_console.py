"""The Users tab with directory (LDAP) accounts beside local ones, against a real slapd."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.helpers.console import api_client, log_in, open_tab
from tests.helpers.processes.serve import serving
from tests.helpers.slapd import GROUP_ROLES, PACKAGERS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd

pytestmark = pytest.mark.e2e

PASSWORD = "a console test passphrase"


def test_directory_users_show_their_source_and_no_password_actions(
    tmp_path: Path, slapd_server: Slapd, page: Page
) -> None:
    uid = f"console-{uuid.uuid4().hex[:8]}"
    slapd_server.add_user(uid, "a directory passphrase", (PACKAGERS,))
    ldap = {
        "ODS_LDAP_URL": slapd_server.ldaps_url,
        "ODS_LDAP_CA_FILE": str(slapd_server.ca_file),
        "ODS_LDAP_BIND_DN": SERVICE_DN,
        "ODS_LDAP_BIND_PASSWORD": SERVICE_PASSWORD,
        "ODS_LDAP_USER_BASE": PEOPLE,
        "ODS_LDAP_GROUP_ROLES": GROUP_ROLES,
    }
    with serving(tmp_path / "data", admin_password=PASSWORD, **ldap) as server:
        # The directory user's first login makes its user in ODS.
        with api_client(server.url, "a directory passphrase", username=uid) as client:
            assert client.get("/api/auth/me").json()["source"] == "ldap"
        log_in(page, server.url, PASSWORD)
        open_tab(page, "Users & tokens")
        directory_row = page.get_by_role("row").filter(has_text=uid)
        expect(directory_row).to_contain_text("Directory (LDAP)")
        expect(directory_row).to_contain_text("Package manager")
        expect(directory_row).to_contain_text("in the directory")
        expect(directory_row.get_by_role("button", name=f"Edit {uid}")).to_have_count(0)
        expect(directory_row.get_by_role("button", name=f"Delete {uid}")).to_be_visible()
        admin_row = page.get_by_role("row").filter(has_text="admin").filter(has_text="Local")
        expect(admin_row.get_by_role("button", name="Edit admin")).to_be_visible()
