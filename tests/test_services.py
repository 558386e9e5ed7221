"""The test servers' harness: servers never outlive the test run, with or without setpriv."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import services

ROOT = Path(__file__).resolve().parents[1]
WAIT = 10.0

# A test process that starts a long-lived "server" through the harness, says
# its pid, then exits by itself ("exit") or waits to be killed ("wait").
TEST_PROCESS = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    from tests.helpers import services

    setpriv, then, log = sys.argv[1] or None, sys.argv[2], Path(sys.argv[3])
    process = services.start(
        [sys.executable, "-c", "import time; time.sleep(300)"],
        log.parent, log, signal.SIGTERM, lambda: True, "sleeper", services.RunAs(setpriv),
    )
    print(process.popen.pid, flush=True)
    if then == "wait":
        time.sleep(300)
    """
)


def sleeping(pid: int) -> bool:
    """Whether `pid` is the test process's server, once setpriv has handed over to it."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).cmdline()[-1:] == ["import time; time.sleep(300)"]:
                return True
        except psutil.NoSuchProcess:
            return False
        time.sleep(0.05)
    return False


def gone(pid: int) -> bool:
    """Whether `pid` has ended (a zombie waiting for its parent to reap it has ended)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def harness_process(
    setpriv: str | None, then: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """The test process and its server's pid, once it has started its server."""
    command = [sys.executable, "-c", TEST_PROCESS, setpriv or "", then, str(tmp_path / "log")]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as test:
        server = None
        try:
            assert test.stdout is not None
            line = test.stdout.readline()
            assert line.strip().isdigit(), f"the test process said {line!r}"
            server = int(line)
            yield test, server
        finally:
            for pid in (test.pid, server):
                with contextlib.suppress(psutil.NoSuchProcess, TypeError):
                    psutil.Process(pid).kill()


def test_without_setpriv_servers_stop_when_the_test_process_exits(tmp_path: Path) -> None:
    with harness_process(None, "exit", tmp_path) as (test, server):
        assert test.wait(WAIT) == 0
        assert gone(server), "the server outlived the test process"


def test_with_setpriv_servers_die_with_a_killed_test_process(tmp_path: Path) -> None:
    setpriv = services.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    with harness_process(setpriv, "wait", tmp_path) as (test, server):
        assert sleeping(server), "the server did not start"
        test.send_signal(signal.SIGKILL)
        assert gone(server), "the server outlived the killed test process"


def test_without_setpriv_servers_run_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, **kwargs: None)
    run_as = services.RunAs.for_server("postgres", "postgresql")
    assert run_as.setpriv is None
    assert not run_as.dies_with_us
    assert run_as.command(["postgres", "-D", "data"]) == ["postgres", "-D", "data"]
    if run_as.user is not None:  # as root: Python switches the user instead
        assert run_as.options() == {"user": "postgres", "group": "postgres", "extra_groups": []}


def test_a_server_that_cannot_start_fails_loudly(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    missing = str(tmp_path / "no-such-server")
    with pytest.raises(services.ServerError, match="missing-server could not start"):
        services.start(
            [missing],
            tmp_path,
            log,
            signal.SIGTERM,
            lambda: True,
            "missing-server",
            services.RunAs(None),
        )


def test_a_server_that_exits_at_start_fails_loudly_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    command = [sys.executable, "-c", "import sys; print('no data dir'); sys.exit(3)"]
    with pytest.raises(services.ServerError, match=r"(?s)broken exited with 3:.*no data dir"):
        services.start(
            command, tmp_path, log, signal.SIGTERM, lambda: False, "broken", services.RunAs(None)
        )
