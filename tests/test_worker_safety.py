"""The fixtures hold up when the suite runs on several pytest-xdist workers (scripts/test).

Two workers meet where the machine is shared: the user database (``other_user`` adds and
removes users while another worker does too) and the port space (a port one test needs to
refuse connections must not be handed to another worker's server).
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.moto_server import closed_port_url
from tests.fixtures.users import system_tool, user_tool
from tests.kb import IN_CI

pytestmark = pytest.mark.linux_backend


#: How long useradd itself waits for a held lock file before it gives up (shadow's commonio:
#: 15 tries 1 s apart; measured here: "cannot lock /etc/passwd; try again later" after 14 s).
USERADD_OWN_WAIT = 14.0


def test_user_tool_outwaits_a_user_database_lock_held_longer_than_useradd_waits(
    tmp_path: Path,
) -> None:
    """useradd and userdel of concurrent workers queue on the user database's lock files;
    useradd gives up after about 14 s. Before: ``other_user`` ran useradd once (a neighbour
    holding the lock longer, e.g. on a loaded machine, failed the test) and said nothing of
    why. Now :func:`user_tool` runs it again while the answer is "cannot lock".

    The user database here is a copy (``useradd --prefix``), so the lock this test holds
    blocks no one else; a live process holds it, as a concurrent useradd would.
    """
    useradd = system_tool("useradd")
    if os.geteuid() != 0 or useradd is None:
        if IN_CI:
            pytest.fail("the user database test needs root and useradd in CI")
        pytest.skip("needs root and useradd")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow"):
        shutil.copy2(Path("/etc") / name, root / "etc" / name)
    name = "kbtlocked"
    holder = subprocess.Popen(["sleep", "120"])
    (root / "etc" / "passwd.lock").write_text(str(holder.pid))  # shadow's lock: the holder's pid

    def release() -> None:
        time.sleep(USERADD_OWN_WAIT + 2)
        holder.kill()
        holder.wait()  # a dead holder's lock is stale: useradd removes it

    threading.Thread(target=release, daemon=True).start()
    started = time.monotonic()
    added = user_tool([useradd, "--prefix", str(root), "--system", "--no-create-home", name])
    took = time.monotonic() - started
    assert added.returncode == 0, added
    assert took > USERADD_OWN_WAIT + 1, took  # longer than one useradd waits: it tried again
    assert f"\n{name}:" in (root / "etc" / "passwd").read_text()
    assert f"\n{name}:" not in Path("/etc/passwd").read_text()


def test_a_closed_port_stays_closed_to_other_processes() -> None:
    """Before: the port was bound and released at once, so a server that another worker
    started on a free port could be given it, and the "refused" endpoint would answer."""
    url = closed_port_url()
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server does
        with pytest.raises(OSError) as taken:
            other.bind(("127.0.0.1", port))
    assert taken.value.errno == errno.EADDRINUSE


SUITE = """
import os

import pytest


@pytest.mark.serial
def test_alone():
    print("ran alone", os.environ.get("PYTEST_XDIST_WORKER", "no worker"))


def test_anywhere():
    pass
"""


def pytest_in(suite: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A pytest run of ``suite`` with tests/fixtures/parallel.py as its only plugin."""
    (suite / "conftest.py").write_text('pytest_plugins = ["tests.fixtures.parallel"]\n')
    (suite / "test_suite.py").write_text(SUITE)
    (suite / "pytest.ini").write_text("[pytest]\nmarkers =\n    serial: alone\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # not a worker
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *args],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_serial_tests_run_alone_and_never_on_xdist_workers(tmp_path: Path) -> None:
    """A plain run runs both tests; on two workers the serial one is left out (and the run
    says so); ``--serial=only`` runs it alone, and refuses to run it on workers."""
    plain = pytest_in(tmp_path, "-p", "no:xdist")
    assert "2 passed" in plain.stdout, plain
    parallel = pytest_in(tmp_path, "-n", "2")
    assert "1 passed" in parallel.stdout, parallel
    assert "ran alone" not in parallel.stdout, parallel
    assert "tests marked serial were not run on the xdist workers" in parallel.stdout, parallel
    alone = pytest_in(tmp_path, "--serial=only")
    assert "ran alone no worker" in alone.stdout, alone
    assert "1 passed, 1 deselected" in alone.stdout, alone
    refused = pytest_in(tmp_path, "--serial=only", "-n", "2")
    assert refused.returncode == pytest.ExitCode.USAGE_ERROR, refused
    assert "run them without -n" in refused.stderr, refused
