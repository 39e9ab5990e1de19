"""A throw-away user for the benchmarks: its own HOME, XDG dirs, config and cache.

The timed environment is minimal (PATH, HOME, XDG dirs, LANG): nothing from the caller's
shell (PYTHON*, VAULT_*, AWS_*, KEYBROKER_*) leaks into the numbers.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path


class Sandbox:
    def __init__(self, bindir: Path) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="kb-bench-"))
        self.bindir = bindir
        self.home = self.base / "home"
        for sub in ("home", "cache", "config/keybroker", "data", "work"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self.env: dict[str, str] = {
            "PATH": f"{bindir}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "XDG_CACHE_HOME": str(self.base / "cache"),
            "XDG_CONFIG_HOME": str(self.base / "config"),
            "XDG_DATA_HOME": str(self.base / "data"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }

    @property
    def cache_dir(self) -> Path:
        return self.base / "cache" / "keybroker"

    @property
    def work(self) -> Path:
        return self.base / "work"

    def exe(self, name: str) -> str:
        """An executable of the benchmarked install (never a pyenv shim)."""
        path = self.bindir / name
        if not path.exists():
            sys.exit(f"benchmarks: {path} is missing; is the venv complete?")
        return str(path)

    def python(self) -> str:
        return self.exe("python")

    def write_config(self, text: str) -> Path:
        path = self.base / "config" / "keybroker" / "config.toml"
        path.write_text(text)
        return path

    def drop_entries(self) -> None:
        """Remove cached keys (not the data key, not the profile index): the next call misses."""
        if self.cache_dir.is_dir():
            for path in self.cache_dir.glob("*.entry"):
                path.unlink(missing_ok=True)

    def with_env(self, **extra: str) -> dict[str, str]:
        return {**self.env, **extra}

    def close(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)
