"""The original ODS API's workflow, through a client generated from /openapi.json.

tests/web/test_generated_clients.py generates `ods_client` with
openapi-python-client, checks this script and the package with `mypy --strict`
and runs it against a real `ods serve`:

    python seed_workflow.py URL PASSWORD PEER_URL PACKAGE_PATH

It logs in as admin, then does what a script written for the original does:
about, about/update with the original's body, upload, list, get by id and by
filename, register with the peer (its iss and key from its own about), list
the registered servers, system information, delete. Any unexpected answer
raises (the client is made with raise_on_unexpected_status) or fails an assert.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ods_client import AuthenticatedClient, Client
from ods_client.api.auth import login
from ods_client.api.network import list_registered_ods, register_ods
from ods_client.api.packages import delete_package, get_package, list_packages, upload_package
from ods_client.api.server import get_about, get_system, update_about
from ods_client.models import (
    About,
    AboutUpdate,
    AboutUpdateFirewalledModeType1,
    LoginRequest,
    LoginResponse,
    PackageDetail,
    PackageList,
    PeerList,
    RegisterRequest,
    Stage,
    SystemInfo,
    UploadPackageBody,
    UploadPackageBodyStage,
    UploadResult,
)
from ods_client.types import File

HEX_UUID = re.compile(r"[0-9a-f]{32}")


def token_for(url: str, password: str) -> str:
    with Client(base_url=url, raise_on_unexpected_status=True) as client:
        answer = login.sync(client=client, body=LoginRequest(username="admin", password=password))
    assert isinstance(answer, LoginResponse), answer
    return answer.token


def admin(url: str, password: str) -> AuthenticatedClient:
    return AuthenticatedClient(
        base_url=url, token=token_for(url, password), raise_on_unexpected_status=True, timeout=None
    )


def about_of(client: AuthenticatedClient) -> About:
    about = get_about.sync(client=client)
    assert isinstance(about, About), about
    return about


def main(url: str, password: str, peer_url: str, package_path: Path) -> None:
    with admin(peer_url, password) as peer:
        peer_about = about_of(peer)
    assert peer_about.key, "the peer's key is shown to its admin"

    with admin(url, password) as client:
        about = about_of(client)
        assert HEX_UUID.fullmatch(about.iss), about.iss

        # The original's body: firewalled_mode as the words it took.
        updated = update_about.sync_detailed(
            client=client,
            body=AboutUpdate(
                name="Seed ODS",
                url=url,
                firewalled_mode=AboutUpdateFirewalledModeType1.ENABLED,
                stage=Stage.PROD,
            ),
        )
        assert updated.status_code == 201, updated.content
        assert isinstance(updated.parsed, About), updated.parsed
        assert updated.parsed.firewalled_mode is True
        assert updated.parsed.name == "Seed ODS"

        with package_path.open("rb") as payload:
            uploaded = upload_package.sync_detailed(
                client=client,
                body=UploadPackageBody(
                    file=File(payload=payload, file_name=package_path.name),
                    stage=UploadPackageBodyStage.PROD,
                ),
            )
        assert uploaded.status_code == 201, uploaded.content
        result = uploaded.parsed
        assert isinstance(result, UploadResult), result
        assert result.filename == package_path.name
        assert HEX_UUID.fullmatch(result.uuid), result.uuid

        listed = list_packages.sync(client=client)
        assert isinstance(listed, PackageList), listed
        assert [package.uuid for package in listed.items] == [result.uuid]

        for ref in (str(result.id), package_path.name, result.uuid):
            package = get_package.sync(ref, client=client)
            assert isinstance(package, PackageDetail), package
            assert (package.id, package.uuid, package.sha1) == (result.id, result.uuid, result.sha1)
            assert package.chunks, "a package lists its chunks"

        registered = register_ods.sync_detailed(
            client=client,
            body=RegisterRequest(url=peer_url, iss_id=peer_about.iss, key=peer_about.key),
        )
        assert registered.status_code == 201, registered.content

        peers = list_registered_ods.sync(client=client)
        assert isinstance(peers, PeerList), peers
        assert [peer.url for peer in peers.items] == [peer_url]

        system = get_system.sync(client=client)
        assert isinstance(system, SystemInfo), system
        assert system.cpu_count >= 1
        assert system.disk_total > 0

        deleted = delete_package.sync_detailed(result.uuid, client=client)
        assert deleted.status_code == 204, deleted.content
        after = list_packages.sync(client=client)
        assert isinstance(after, PackageList), after
        assert after.items == []
    print("seed workflow: ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]))
