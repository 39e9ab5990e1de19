"""A per-machine keybroker, as managed settings need one: root-owned, 0755, runnable by all.

The test venv's console script lives under the developer's checkout and (here) runs a Python
under root's 0700 home, so ``configure --scope managed`` rightly refuses it. An administrator
puts a wrapper in /usr/local/bin; this fixture puts the same wrapper in a fresh root-owned
0755 folder under /tmp and removes it afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kb import SCRIPTS


@pytest.fixture
def fleet_keybroker() -> Iterator[Path]:
    """An executable every user may run and only root may change, exec-ing this keybroker."""
    if os.geteuid() != 0:
        pytest.skip("a root-owned per-machine install needs root")
    folder = Path(tempfile.mkdtemp(prefix="kb-fleet-", dir="/tmp"))
    try:
        os.chmod(folder, 0o755)
        wrapper = folder / "keybroker"
        wrapper.write_text(f'#!/bin/sh\nexec {SCRIPTS / "keybroker"} "$@"\n')
        os.chmod(wrapper, 0o755)
        yield wrapper
    finally:
        shutil.rmtree(folder, ignore_errors=True)
