"""The schema fuzzer: schemathesis over every operation of a real `ods serve`, seeded and bounded.

Checks: no server errors, status codes, content types and response bodies as
the schema declares them, refusal of data the schema forbids and acceptance of
data it allows; then the stateful run, which follows the links schemathesis
infers between operations (a user created, then read, changed and deleted).

A 400 counts as accepting valid data: it is ODS's answer for a value that fits
the schema but that the server refuses for a reason the schema cannot say (a
common password, a filename with a control character, a peer that does not
answer), with the reason in the message (docs/api.md, Errors). A 502 from
registering with a peer that does not answer is that peer's error, not a
server error of this one.

The fuzzer runs as the first admin. Its own session must survive the run, so
it never logs itself out, and a case aimed at its own user or token is aimed
at an id nobody has instead.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config._checks import NotAServerErrorConfig, PositiveDataAcceptanceConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from ods.app import create_app
from ods.core.config import load_settings
from tests.helpers.api import NEW_PASSWORD, TEST_DATABASE_KEY
from tests.helpers.processes.serve import OdsServer, serving
from tests.helpers.receivers.smtp import SmtpReceiver

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]
# about/update checks its name and url by rules a JSON schema cannot state (printable
# text, an http(s) url with a host): a value that fits the schema but breaks them is
# refused with 422, which is not a failure to accept good data.
# Webhooks likewise: a url must resolve to an address a webhook may post to, and an
# `ods` webhook needs a secret; both are refused with 422 naming the field.
LAX = {
    "POST /api/admin/about/update": {positive_data_acceptance},
    "POST /api/admin/webhooks": {positive_data_acceptance},
    "PATCH /api/admin/webhooks/{webhook_id}": {positive_data_acceptance},
}
NOBODY = 9_000_000
# How the request is framed on the wire: uvicorn reads these before ODS sees the
# request, and answers a malformed one (`Transfer-Encoding: 7[0_F`) with its own
# text/plain 400. Fuzzing them would test uvicorn's HTTP parser, not ODS.
FRAMING_HEADERS = {"transfer-encoding", "content-length", "connection", "host", "upgrade"}
FUZZ_SETTINGS = settings(
    max_examples=8,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


class Admin:
    """The fuzzer's own session on the server."""

    def __init__(self, server: OdsServer) -> None:
        self.url = server.url
        with httpx.Client(base_url=server.url) as client:
            login = client.post(
                "/api/auth/login", json={"username": "admin", "password": NEW_PASSWORD}
            )
            assert login.status_code == 200, login.text
            self.headers = {"Authorization": f"Bearer {login.json()['token']}"}
            me = client.get("/api/auth/me", headers=self.headers).json()
            tokens = client.get("/api/admin/tokens", headers=self.headers).json()["items"]
        self.user_id: int = me["id"]
        self.token_ids: set[int] = {token["id"] for token in tokens}

    def spare_own_account(self, case: Any) -> None:
        """Aim the case away from the fuzzer's own user and tokens; leave the request's
        framing to the HTTP client."""
        for name in list(case.headers or {}):
            if name.lower() in FRAMING_HEADERS:
                del case.headers[name]
        parameters = case.path_parameters or {}
        if parameters.get("user_id") == self.user_id:
            parameters["user_id"] = NOBODY
        if parameters.get("token_id") in self.token_ids:
            parameters["token_id"] = NOBODY


def checks_for(case: Any) -> list[Callable[..., Any]]:
    left_out = LAX.get(case.operation.label, set())
    return [check for check in CHECKS if check not in left_out]


def served_schema() -> Any:
    """The schema `ods serve` serves, built here from an app that is never started:
    schemathesis parametrizes at import, before any server runs."""
    with tempfile.TemporaryDirectory() as data:
        app_settings = load_settings(data_dir=data, database_key=TEST_DATABASE_KEY)
        document = create_app(app_settings).openapi()
    loaded = schemathesis.openapi.from_dict(document)
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        deterministic=True,
        database="none",
    )
    accepted = [*loaded.config.checks.positive_data_acceptance.expected_statuses, "400"]
    loaded.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=accepted
    )
    # 502 is POST /api/admin/register's documented answer when the other server does
    # not answer: an error of that server, not of this one.
    loaded.config.checks.not_a_server_error = NotAServerErrorConfig(
        expected_statuses=[*loaded.config.checks.not_a_server_error.expected_statuses, "502"]
    )
    # Logging out would end the fuzzer's own session; the live event stream never ends.
    return loaded.exclude(operation_id=["logout", "stream_events"])


schema = served_schema()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    # A real SMTP server, so that test mails of email subscriptions are sent.
    smtp = SmtpReceiver(tmp_path_factory.mktemp("smtp")).start()
    try:
        with serving(Path(data), admin_password=NEW_PASSWORD, **smtp.env()) as server:
            yield Admin(server)
    finally:
        smtp.stop()


@pytest.mark.e2e
@schema.parametrize()  # type: ignore[untyped-decorator]
@FUZZ_SETTINGS
def test_every_operation_keeps_to_the_schema(case: Any, fuzzed: Admin) -> None:
    fuzzed.spare_own_account(case)
    case.call_and_validate(
        base_url=fuzzed.url, headers=fuzzed.headers, checks=checks_for(case), timeout=30
    )


@pytest.mark.e2e
def test_linked_operations_keep_to_the_schema(fuzzed: Admin) -> None:
    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            fuzzed.spare_own_account(case)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": fuzzed.url, "headers": fuzzed.headers, "timeout": 30}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=checks_for(case))

    Workflow.run(settings=settings(FUZZ_SETTINGS, max_examples=10, stateful_step_count=6))
