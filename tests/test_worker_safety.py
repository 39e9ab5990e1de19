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
