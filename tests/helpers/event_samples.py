"""One event of every kind of the catalogue, with the message it renders: the samples the
catalogue's tests check and the notification docs are generated from."""

from __future__ import annotations

from ods.core.stages import Stage
from ods.core.statuses import Status
from ods.events import catalogue, integration_events, notification_events, trust_events
from ods.events.base import EventData

UUID = "28f7c0aa-8f1e-4c1e-9a57-2b1d5e9f7c11"
OTHER_UUID = "5b0d1f2e-3c4a-4b5c-8d6e-7f8091a2b3c4"
HEX, OTHER_HEX = UUID.replace("-", ""), OTHER_UUID.replace("-", "")
PEER_ISS = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
ISS = PEER_ISS
SHA1 = "3fab8a2c4d1e5f60718293a4b5c6d7e8f9012345"
SHA256 = "9b1c0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
PACKAGE: catalogue.PackageFacts = {
    "uuid": UUID,
    "filename": "NoMAD.pkg",
    "stage": Stage.PROD,
    "status": Status.PUBLIC,
    "file_size": 3438044,
    "sha1": SHA1,
    "sha256": SHA256,
}
PEER = {"iss": PEER_ISS, "name": "ods-b", "url": "http://ods-b:8000"}

# One event of every kind, and the message it renders: the texts the log showed
# before the catalogue, kept word for word.
SAMPLES: list[tuple[EventData, str]] = [
    (catalogue.PackageUploaded(**PACKAGE), "NoMAD.pkg uploaded (Prod, 3.3 MB)"),
    (
        catalogue.PackageReplaced(**PACKAGE, replaced_uuid=OTHER_UUID),
        "NoMAD.pkg replaced (Prod, 3.3 MB)",
    ),
    (
        catalogue.PackageDownloading(**PACKAGE, peer="ods-b", peer_iss=PEER_ISS),
        "NoMAD.pkg (3.3 MB) is coming from ods-b",
    ),
    (
        catalogue.PackageAvailable(**PACKAGE, peer="ods-b", peer_iss=PEER_ISS),
        "NoMAD.pkg is available here",
    ),
    (
        catalogue.PackageStageChanged(**PACKAGE, previous_stage=Stage.TEST),
        "NoMAD.pkg moved from Test to Prod",
    ),
    (
        catalogue.PackageStageChanged(
            **PACKAGE, previous_stage=Stage.DEV, peer="ods-b", peer_iss=PEER_ISS
        ),
        "NoMAD.pkg moved from Dev to Prod (from ods-b)",
    ),
    (
        catalogue.PackageWithdrawn(**PACKAGE | {"stage": Stage.TEST}, server_stage=Stage.PROD),
        "NoMAD.pkg is withdrawn here: it is at Test now, and this server takes Prod and later "
        "stages",
    ),
    (catalogue.PackageRestored(**PACKAGE), "NoMAD.pkg is back at Prod and downloadable again"),
    (catalogue.PackageDeleted(**PACKAGE, reason="deleted"), "NoMAD.pkg deleted"),
    (
        catalogue.PackageDeleted(**PACKAGE, reason="replaced", peer="ods-b", peer_iss=PEER_ISS),
        "NoMAD.pkg replaced on ods-b: removed here too",
    ),
    (
        catalogue.PackageDeleted(**PACKAGE, reason="deleted", peer="ods-b", peer_iss=PEER_ISS),
        "NoMAD.pkg deleted on ods-b: removed here too",
    ),
    (
        catalogue.PackageFailed(**PACKAGE, reason="no registered peer is left to fetch it from"),
        "NoMAD.pkg could not be fetched: no registered peer is left to fetch it from",
    ),
    (
        catalogue.PackageWaitingForSpace(
            **PACKAGE, needed_bytes=3 * 1024**2, free_bytes=1024**2, reserve_bytes=256 * 1024**2
        ),
        "NoMAD.pkg waits for disk space: 3.0 MB to go, 1.0 MB free",
    ),
    (
        catalogue.PackageConflict(
            **PACKAGE,
            incoming_uuid=OTHER_UUID,
            incoming_stage=Stage.PROD,
            incoming_file_size=12,
            incoming_sha1="0" * 40,
            incoming_sha256="0" * 64,
            peer="ods-b",
            peer_iss=PEER_ISS,
            winner_uuid=OTHER_UUID,
            loser_uuid=UUID,
        ),
        # Event data shows uuids as the admin API does: 32 hex digits.
        f"NoMAD.pkg: two different uploads met (uuid {HEX} here, uuid {OTHER_HEX} from "
        f"ods-b); the newer upload, {OTHER_HEX}, wins on every server and {HEX} is set aside",
    ),
    (
        catalogue.PeerRegistered(**PEER, by_peer=False, re_registered=False),
        "Registered with ods-b (http://ods-b:8000)",
    ),
    (
        catalogue.PeerRegistered(**PEER, by_peer=True, re_registered=False),
        "ods-b (http://ods-b:8000) registered with this server",
    ),
    (
        catalogue.PeerRegistered(**PEER, by_peer=True, re_registered=True),
        "ods-b (http://ods-b:8000) re-registered with this server",
    ),
    (
        catalogue.PeerUnregistered(**PEER, by_peer=False),
        "Unregistered ods-b (http://ods-b:8000)",
    ),
    (
        catalogue.PeerUnregistered(**PEER, by_peer=True),
        "ods-b (http://ods-b:8000) unregistered from this server",
    ),
    (catalogue.PeerReachable(**PEER), "ods-b is reachable again"),
    (
        catalogue.PeerUnreachable(**PEER, error="http://ods-b:8000 is unreachable"),
        "ods-b: http://ods-b:8000 is unreachable",
    ),
    (
        catalogue.ServerUpdated(
            name="Example ODS",
            url="",
            stage=Stage.DEV,
            firewalled_mode=True,
            changes=(
                catalogue.SettingChange(setting="name", before="", after="Example ODS"),
                catalogue.SettingChange(setting="stage", before="Prod", after="Dev"),
                catalogue.SettingChange(setting="firewalled_mode", before=False, after=True),
            ),
        ),
        "Server settings: name '' -> 'Example ODS'; stage 'Prod' -> 'Dev'; "
        "firewalled_mode False -> True",
    ),
    (
        catalogue.UserCreated(username="alice", role="read_only", must_change_password=True),
        "User alice created",
    ),
    (
        catalogue.UserUpdated(
            username="alice", role="admin", must_change_password=False, password_reset=False
        ),
        "User alice updated",
    ),
    (catalogue.UserDeleted(username="alice", role="admin"), "User alice deleted"),
    (catalogue.UserPasswordChanged(username="alice"), "Password changed"),
    (
        catalogue.TokenCreated(name="AutoPkg", username="alice", expires=None),
        "API token 'AutoPkg' created",
    ),
    (
        catalogue.TokenRevoked(name="AutoPkg", username="alice", token_kind="api"),
        "Token 'AutoPkg' revoked",
    ),
    (
        catalogue.LoginFailed(username="alice", address="192.0.2.7"),
        "Failed login for 'alice' from 192.0.2.7",
    ),
    (
        catalogue.PasswordCheckFailed(username="alice", address="192.0.2.7"),
        "Wrong old password for 'alice' from 192.0.2.7",
    ),
    (
        catalogue.PeerRegistrationRefused(
            iss=ISS, name="Lyon", url="http://evil.example", reason="no link proof"
        ),
        f"Refused a registration as {ISS} from http://evil.example: no link proof",
    ),
    (
        trust_events.OriginKeyPinned(iss=ISS, fingerprint="3f2a:91c4", via_iss=None),
        f"Pinned the signing key 3f2a:91c4 of {ISS}",
    ),
    (
        trust_events.OriginKeyRefused(
            iss=ISS, fingerprint="0000:1111", pinned_fingerprint="3f2a:91c4", via_iss=ISS
        ),
        f"Refused key 0000:1111 for {ISS}: 3f2a:91c4 is pinned for it",
    ),
    (
        trust_events.OriginKeyForgotten(iss=ISS, fingerprint="3f2a:91c4"),
        f"Unpinned the signing key 3f2a:91c4 of {ISS}",
    ),
    (
        trust_events.StatementRefused(
            subject="package",
            uuid=OTHER_UUID,
            filename="NoMAD.pkg",
            peer="Lyon",
            peer_iss=ISS,
            reason="its sha256 differs from what its origin signed",
        ),
        "Refused package of NoMAD.pkg from Lyon: its sha256 differs from what its origin signed",
    ),
    (
        trust_events.TrustPolicyChanged(policy="listed", origins=[ISS]),
        "Trust policy: packages only from 1 listed origin(s)",
    ),
    (
        trust_events.TrustPolicyChanged(policy="any", origins=[]),
        "Trust policy: packages from any server of the mesh",
    ),
    (notification_events.Ping(webhook_id=3), "Test delivery from ODS: this webhook works"),
    (
        notification_events.WebhookDisabled(
            webhook_id=3, url="https://hooks.example.org/ods", reason="the receiver answered 410"
        ),
        "Webhook 3 (https://hooks.example.org/ods) disabled: the receiver answered 410",
    ),
    (
        integration_events.JamfSynced(filename="NoMAD.pkg", action="created", jamf_id="42"),
        "Jamf Pro record of NoMAD.pkg created (id 42)",
    ),
    (
        integration_events.JamfFailed(filename="NoMAD.pkg", reason="Jamf Pro answered 503"),
        "Jamf Pro record of NoMAD.pkg not synced: Jamf Pro answered 503",
    ),
]
