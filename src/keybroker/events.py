"""The event log: what keybroker did that a person should be able to see later.

Claude Code discards a successful helper's stderr, so a warning printed there ("stale key
served", "short-lived key") never reaches anyone. Refreshes, failures, stale serves, refusals
and backoffs are therefore also appended here, one JSON object per line, in the data dir
(``events.jsonl``, 0600, rotated at 256 KiB to ``events.jsonl.1``). ``keybroker events``,
``print-token`` and ``doctor`` show them. Nothing secret is ever written: messages are built
from names, then scrubbed of every registered secret anyway.

Writing never fails a call: a full disk or a read-only data dir loses the event, not the key.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

from keybroker import clock, paths

FILE = "events.jsonl"
MAX_BYTES = 256 * 1024
#: What can happen to a key, for filtering and for docs/cache.md.
KINDS = (
    "refresh",  # a fresh key was fetched (miss, expiry window, rotation)
    "refresh-failed",  # the source failed and nothing could be served
    "stale-served",  # the source failed (or was busy) and a still-valid key was served
    "refusal",  # the same Claude Code process asked again: its key was refused (HTTP 401)
    "backoff",  # a refusal refetch returned the same key: serving it, not asking again soon
    "short-lived",  # the key lives less than Claude Code's TTL + margin
    "repeat-unavailable",  # no process table answers: a re-run after a 401 is unrecognisable
)
#: The kind column of :func:`render`: as wide as the longest kind, so columns line up.
KIND_WIDTH = max(len(kind) for kind in KINDS)


def log_path(env: Mapping[str, str]) -> str:
    return os.path.join(paths.data_dir_str(env), FILE)


def record(
    env: Mapping[str, str], kind: str, profile: str | None, message: str, **extra: Any
) -> None:
    """Append one event (best effort)."""
    from keybroker.redact import neutralise, scrub  # noqa: PLC0415

    event = {
        "ts": round(clock.now(), 3),
        "kind": kind,
        "profile": profile,
        # which config named the profile: another config may use the same name (doctor
        # shows only its own config's events)
        "config": str(paths.config_file(env)),
        "message": neutralise(scrub(message)),
        "pid": os.getpid(),
        **extra,
    }
    line = (json.dumps(event, sort_keys=True) + "\n").encode()
    path = log_path(env)
    try:
        _rotate(path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0), 0o600)
    except OSError:
        return
    try:
        os.write(fd, line)
    except OSError:
        pass
    finally:
        os.close(fd)


def _rotate(path: str) -> None:
    try:
        if os.stat(path).st_size < MAX_BYTES:
            return
    except FileNotFoundError:
        return
    # Two processes may rotate at once; the loser's rename fails or moves a fresh file: at
    # most a few events are lost, never a call.
    os.replace(path, path + ".1")


def read(
    env: Mapping[str, str], profile: str | None = None, since: float | None = None
) -> Iterator[dict[str, Any]]:
    """Events oldest first (the rotated file, then the current one)."""
    from keybroker.cache.files import read_bytes  # noqa: PLC0415

    base = log_path(env)
    for path in (base + ".1", base):
        blob = read_bytes(path, limit=4 * MAX_BYTES)
        for line in (blob or b"").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if profile is not None and event.get("profile") != profile:
                continue
            if since is not None and float(event.get("ts") or 0) < since:
                continue
            yield event


def recent(env: Mapping[str, str], profile: str | None, limit: int = 5) -> list[dict[str, Any]]:
    """The last ``limit`` events (of one profile) under the current config: an event another
    config recorded for a profile of the same name is not this profile's history."""
    config = str(paths.config_file(env))
    return [event for event in read(env, profile) if event.get("config") in (None, config)][-limit:]


def render(event: Mapping[str, Any]) -> str:
    """One line for people: ``2026-12-02 10:31:05  stale-served  litellm  message``.

    Every field is neutralised (and scrubbed): a profile name is a quoted TOML key that may
    hold any character, and the log is a file a person's terminal should not obey.
    """
    from keybroker.redact import neutralise, scrub  # noqa: PLC0415

    try:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(event.get("ts") or 0)))
    except (TypeError, ValueError, OverflowError, OSError):
        stamp = "????-??-?? ??:??:??"
    kind = neutralise(str(event.get("kind") or "?"), 40)
    who = neutralise(str(event.get("profile") or "-"), 80)
    message = neutralise(scrub(str(event.get("message") or "")))
    return f"{stamp}  {kind:<{KIND_WIDTH}} {who:<16} {message}"
