"""Clients generated from a real server's /openapi.json by tools nobody here wrote.

- openapi-python-client makes a Python package; it and the original API's
  workflow (tests/clients/seed_workflow.py) pass `mypy --strict`, and the
  workflow runs against a real `ods serve` registering with a second one.
- openapi-typescript makes TypeScript types, which compile under
  `tsc --strict` with a file that uses them as a client of the original would.

The npm tools are installed into tests/clients/node_modules by scripts/test
(`npm ci` from the committed package-lock.json).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.processes.serve import OdsServer, serving

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
NODE_BIN = CLIENTS / "node_modules" / ".bin"
VENV_BIN = Path(sys.executable).parent
PASSWORD = "a generated-client passphrase"


def run(args: list[str | Path], cwd: Path, timeout: float = 300) -> str:
    """Run a tool; fail the test with its output if it fails."""
    done = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{output}"
    return output


def node_tool(name: str) -> Path:
    tool = NODE_BIN / name
    assert tool.exists(), f"{tool} is missing: scripts/test installs it (npm ci in tests/clients)"
    return tool


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OdsServer]:
    with serving(tmp_path / "ods", admin_password=PASSWORD) as running:
        yield running


def schema_of(server: OdsServer, path: Path) -> Path:
    response = httpx.get(f"{server.url}/openapi.json", timeout=30)
    assert response.status_code == 200
    path.write_text(json.dumps(response.json()), encoding="utf-8")
    return path


def test_a_generated_python_client_runs_the_original_workflow(
    tmp_path: Path, server: OdsServer
) -> None:
    schema = schema_of(server, tmp_path / "openapi.json")
    config = tmp_path / "generator.json"
    # No post hooks: the generator would run ruff from PATH on the result.
    config.write_text(json.dumps({"post_hooks": [], "package_name_override": "ods_client"}))
    output = run(
        [
            VENV_BIN / "openapi-python-client",
            "generate",
            "--path",
            schema,
            "--config",
            config,
            "--meta",
            "none",
            "--output-path",
            tmp_path / "ods_client",
        ],
        cwd=tmp_path,
    )
    # A warning means a part of the schema the generator could not turn into code.
    assert "Warning" not in output, output
    workflow = tmp_path / "seed_workflow.py"
    shutil.copy(CLIENTS / "seed_workflow.py", workflow)

    mypy_ini = tmp_path / "mypy.ini"
    mypy_ini.write_text("[mypy]\nstrict = True\n", encoding="utf-8")
    run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            mypy_ini,
            "--strict",
            "ods_client",
            workflow,
        ],
        cwd=tmp_path,
    )

    package = tmp_path / "NoMAD.pkg"
    package.write_bytes(os.urandom(1024 * 1024 + 17))
    with serving(tmp_path / "peer", admin_password=PASSWORD) as peer:
        env = os.environ | {"PYTHONPATH": str(tmp_path)}
        done = subprocess.run(
            [sys.executable, workflow, server.url, PASSWORD, peer.url, package],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert done.returncode == 0, done.stdout + done.stderr + server.output()
    assert "seed workflow: ok" in done.stdout


TYPESCRIPT_CLIENT = """\
import type { components, paths } from "./schema";

type Schemas = components["schemas"];

// The original's about/update body, with firewalled_mode as the words it took.
const update: Schemas["AboutUpdate"] = {
  name: "Seed ODS",
  url: "http://192.168.99.100",
  firewalled_mode: "Enabled",
  stage: "Prod",
};
const booleanToo: Schemas["AboutUpdate"] = { firewalled_mode: false };

type Package = Schemas["PackageOut"];
type Listed = paths["/api/admin/packages"]["get"]["responses"][200]["content"]["application/json"];

export function uuids(list: Listed): string[] {
  return list.items.map((item: Package) => item.uuid);
}

export function register(about: Schemas["About"]): Schemas["RegisterRequest"] {
  return { url: about.url, iss_id: about.iss, key: about.key ?? "" };
}

export const bodies = [update, booleanToo];
"""


def test_generated_typescript_types_compile_strictly(tmp_path: Path, server: OdsServer) -> None:
    schema = schema_of(server, tmp_path / "openapi.json")
    run([node_tool("openapi-typescript"), schema, "--output", tmp_path / "schema.ts"], tmp_path)
    (tmp_path / "client.ts").write_text(TYPESCRIPT_CLIENT, encoding="utf-8")
    run(
        [
            node_tool("tsc"),
            "--strict",
            "--noEmit",
            "--target",
            "es2022",
            "--module",
            "es2022",
            "--moduleResolution",
            "bundler",
            "schema.ts",
            "client.ts",
        ],
        tmp_path,
    )
