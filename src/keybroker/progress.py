"""A one-line status on stderr while slow work runs, so a person knows keybroker is waiting.

After ``delay`` (1 s) a daemon thread writes ``keybroker: waiting for vault.example.com… 3s``
and redraws it every second; when the work ends the line is erased, so what remains on the
terminal is exactly what would be there without it. Shown only to a person: never when
stderr is not a terminal, never under Claude Code (``CLAUDE_CODE_ENTRYPOINT`` or
``CLAUDECODE`` set: it shows helper stderr in ``/status``), never with ``KEYBROKER_QUIET``.

Only the full path imports this module; the cache-hit path never waits on anything. Do not
wrap work that itself talks to the person (a device-code prompt): the two lines would mix.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping
from typing import IO, Any

DELAY = 1.0
INTERVAL = 1.0


def wanted(stream: IO[Any], env: Mapping[str, str]) -> bool:
    """Whether a status line may be drawn on ``stream`` for this environment."""
    if env.get("CLAUDE_CODE_ENTRYPOINT") or env.get("CLAUDECODE"):
        return False
    if env.get("KEYBROKER_QUIET", "") not in ("", "0"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def waiting_for(
    source: str, settings: Mapping[str, Any], env: Mapping[str, str], label: str
) -> str:
    """``waiting for HOST`` from the setting that names the server, else the source's label."""
    url = settings.get("addr") or settings.get("issuer") or settings.get("endpoint_url")
    if not url and source == "vault":
        url = env.get("VAULT_ADDR")
    if url:
        from urllib.parse import urlsplit  # noqa: PLC0415

        with contextlib.suppress(ValueError):
            host = urlsplit(str(url)).hostname
            if host:
                return f"waiting for {host}"
    return (
        f"waiting for {source} ({label})" if label and label != source else f"waiting for {source}"
    )


@contextlib.contextmanager
def status(
    text: str,
    env: Mapping[str, str] | None = None,
    *,
    stream: IO[Any] | None = None,
    delay: float = DELAY,
    interval: float = INTERVAL,
) -> Iterator[None]:
    """Show ``keybroker: TEXT… Ns`` on ``stream`` (stderr) while the block runs past ``delay``."""
    out = sys.stderr if stream is None else stream
    environ = os.environ if env is None else env
    if not wanted(out, environ):
        yield
        return
    import threading  # noqa: PLC0415

    line = _Line(out, dumb=environ.get("TERM") == "dumb")
    stop = threading.Event()
    started = time.monotonic()

    def draw() -> None:
        if stop.wait(delay):
            return
        while True:
            elapsed = int(time.monotonic() - started)
            if not line.show(f"keybroker: {text}", f"… {elapsed}s", stop):
                return
            if stop.wait(interval):
                return

    threading.Thread(target=draw, name="keybroker-status", daemon=True).start()
    try:
        yield
    finally:
        stop.set()
        line.erase()


class _Line:
    """The drawn line; a lock keeps the final erase after the last draw."""

    def __init__(self, stream: IO[Any], dumb: bool) -> None:
        import threading  # noqa: PLC0415

        self.stream = stream
        self.dumb = dumb
        self.width = 0
        self.lock = threading.Lock()

    def show(self, head: str, tail: str, stop: Any) -> bool:
        """Draw ``head`` + ``tail``, cutting ``head`` so the line never wraps (\r only returns
        within one row) and the elapsed time in ``tail`` stays visible."""
        text = head[: max(0, self._columns() - 1 - len(tail))] + tail
        with self.lock:
            if stop.is_set():
                return False
            pad = " " * max(0, self.width - len(text)) if self.dumb else "\x1b[K"
            self.width = len(text)
            return self._write(f"\r{text}{pad}")

    def erase(self) -> None:
        with self.lock:
            if self.width:
                self._write(f"\r{' ' * self.width}\r" if self.dumb else "\r\x1b[K")
                self.width = 0

    def _columns(self) -> int:
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
        return max(20, columns) if columns else 80  # 0: the terminal did not say

    def _write(self, text: str) -> bool:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away: stop drawing, never fail
            return False
        return True
