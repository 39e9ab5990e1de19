"""What ``keybroker doctor`` checks: the cache dir, the data key, each profile (its source's own
checks, whether the fast path serves it, a real resolve, the key's lifetime against Claude
Code's TTL, recent warnings), Claude Code's settings, and what ``/bin/sh`` finds on PATH.

Each check returns :class:`~keybroker.sources.base.Check` values (✓/✗, detail, fix); the
command (:mod:`keybroker.cli.doctor`) only renders them. Nothing here prints, and no check
formats a secret.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from typing import Any, ClassVar

from keybroker.sources.base import Check

#: What IDEs and launchd give a process: keybroker is rarely on it.
MINIMAL_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
#: A helper TTL under this many milliseconds was almost surely meant in seconds.
SECONDS_LIKE_TTL_MS = 10_000
#: Outcome states where the key came from the cache, not from the source just now.
CACHED_STATES = ("hit", "stale", "backoff")


class Warn(Check):
    """Works now, but worth acting on: rendered ⚠ with its fix; does not fail doctor."""

    __slots__ = ()
    mark: ClassVar[str] = "⚠"


class Past(Check):
    """History (an event from the log), not a check of the present: rendered ·."""

    __slots__ = ()
    mark: ClassVar[str] = "·"


def check_cache_dir(env: Mapping[str, str]) -> Check:
    from keybroker import paths  # noqa: PLC0415
    from keybroker.cache.files import check_private_dir  # noqa: PLC0415
    from keybroker.errors import CacheError  # noqa: PLC0415

    root = paths.cache_dir(env)
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return Check(True, "cache dir", f"{root} (created on first use)")
    except OSError as exc:
        return Check(
            False,
            "cache dir",
            f"cannot inspect {root}: {exc.strerror}",
            "check permissions or set KEYBROKER_CACHE_DIR",
        )
    try:
        check_private_dir(root, st, "cache directory")
    except CacheError as exc:
        return Check(False, "cache dir", exc.message, exc.hint or "")
    return Check(True, "cache dir", f"{root} (private)")


def check_data_key(env: Mapping[str, str]) -> Check:
    from keybroker import paths  # noqa: PLC0415
    from keybroker.cache.crypto import KEYCHAIN_ACCOUNT, key_store, load_data_key  # noqa: PLC0415
    from keybroker.errors import CacheError  # noqa: PLC0415

    data_dir = paths.data_dir(env)
    try:
        store = key_store(env)
        key = load_data_key(data_dir, create=False, store=store)
    except CacheError as exc:
        return Check(False, "data key", exc.message, exc.hint or "")
    if store == "keychain":
        state = "present" if key is not None else "created on first use"
        return Check(True, "data key", f"OS keychain, keybroker/{KEYCHAIN_ACCOUNT} ({state})")
    if key is None:
        return Check(True, "data key", f"{data_dir} (created on first use)")
    return Check(True, "data key", f"{data_dir}/cache.key (present, private)")


def check_repeat_recovery(env: Mapping[str, str]) -> Check:
    """Whether a re-run of apiKeyHelper after a 401 can be recognised here (DESIGN section 4,
    "Every platform"): the process table answers now, and no helper run under Claude Code
    reported it could not (a ``repeat-unavailable`` event of the last day)."""
    import time  # noqa: PLC0415

    from keybroker import clock, events  # noqa: PLC0415
    from keybroker.cache.caller import for_platform  # noqa: PLC0415

    label = "401 recovery unavailable"
    fix = (
        "run keybroker where its process table answers (/proc mounted and visible on "
        "Linux; macOS; Windows 8.1+); until then a rotated key is picked up only when its "
        "entry ages out, or after: keybroker cache clear PROFILE"
    )
    table = for_platform()
    problem = table.problem()
    if problem:
        return Check(
            False,
            label,
            f"{problem}; a re-run of apiKeyHelper after a 401 cannot "
            "be recognised, so a refused key is served again",
            fix,
        )
    since = clock.now() - 86400
    seen = [e for e in events.read(env, since=since) if e.get("kind") == "repeat-unavailable"]
    if seen:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(seen[-1]["ts"])))
        message = str(seen[-1].get("message", "")).removeprefix(f"{label}: ")
        return Check(
            False,
            label,
            f"under Claude Code at {stamp} (pid {seen[-1].get('pid')}): {message}",
            fix,
        )
    return Check(True, "401 recovery", f"on ({table.name} answers)")


def check_profile(name: str, config: Any, env: Mapping[str, str], cache: Any) -> list[Check]:
    """The source's own checks, then a real resolve and the key's lifetime against T + m."""
    from keybroker import clock  # noqa: PLC0415
    from keybroker.cache.store import CacheAux  # noqa: PLC0415
    from keybroker.config import request_for  # noqa: PLC0415
    from keybroker.durations import format_duration  # noqa: PLC0415
    from keybroker.errors import KeybrokerError  # noqa: PLC0415
    from keybroker.model import Deadline  # noqa: PLC0415
    from keybroker.resolve import resolve  # noqa: PLC0415
    from keybroker.sources.base import FetchContext, get_source  # noqa: PLC0415

    label = f"profile '{name}'"
    try:
        request = request_for(config, name, env)
        source = get_source(request.source)
    except KeybrokerError as exc:
        return [Check(False, label, exc.message, exc.hint or "")]
    checks: list[Check] = []
    ctx = FetchContext(
        Deadline(request.options.timeout),
        env,
        CacheAux(cache, source.name) if cache is not None else None,
    )
    failed: list[Check] = []
    try:
        for item in source.doctor(request, ctx):
            check = Check(
                item.ok,
                f"{label} {item.label}",
                one_prefix(item.detail, request.where(), source.name),
                item.fix,
            )
            checks.append(check)
            if not check.ok:
                failed.append(check)
    except KeybrokerError as exc:
        failed.append(
            Check(
                False,
                f"{label} {source.name} check",
                one_prefix(exc.message, request.where(), source.name),
                exc.hint or "",
            )
        )
        checks.append(failed[-1])
    except Exception as exc:  # a plugin's broken hook must not stop the other checks
        failed.append(
            Check(
                False,
                f"{label} {source.name} check",
                f"the check itself failed ({type(exc).__name__})",
            )
        )
        checks.append(failed[-1])
    checks.extend(fast_path_and_events(name, config, env, cache))
    try:
        outcome = resolve(request, env, cache=cache)
    except KeybrokerError as exc:
        fix = exc.hint or f"run: keybroker print-token {name} --debug"
        checks.append(Check(False, label, _detail(exc.message, request.where(), source.name), fix))
        return checks
    where = f"{source.name} ({outcome.label})" if outcome.label else source.name
    if failed and outcome.state in CACHED_STATES:
        # the cache answered, not the source: a ✓ here would contradict the ✗ above
        checks.append(
            Warn(
                True,
                label,
                f"the cached key from {where} was served (cache {outcome.state}), but the "
                f"credential check failed ({failed[0].label.removeprefix(label).strip()}): "
                "the key works until it expires, then every refresh fails",
                failed[0].fix or "fix what the ✗ above names",
            )
        )
    else:
        checks.append(Check(True, label, f"key obtained from {where}, cache {outcome.state}"))
    need = outcome.policy.need
    if outcome.expires_at is None:
        reuse = outcome.policy.max_age if outcome.policy.max_age is not None else outcome.policy.ttl
        checks.append(
            Check(
                True,
                f"{label} lifetime",
                f"no expiry known; reused for {format_duration(reuse, sub_second=True)}",
            )
        )
    elif outcome.short_lived:
        life = outcome.expires_at - outcome.fetched_at
        checks.append(
            Check(
                False,
                f"{label} lifetime",
                f"the key lives {format_duration(life)}, less than Claude Code's TTL + margin "
                f"({format_duration(need)}): Claude Code may use it after it expires",
                "lengthen the key's lifetime at the source, or lower "
                "CLAUDE_CODE_API_KEY_HELPER_TTL_MS (keybroker claude configure --ttl)",
            )
        )
    else:
        left = outcome.expires_at - clock.now()
        checks.append(
            Check(
                True,
                f"{label} lifetime",
                f"valid {format_duration(left)} more ≥ TTL + margin {format_duration(need)}",
            )
        )
    return checks


def fast_path_and_events(name: str, config: Any, env: Mapping[str, str], cache: Any) -> list[Check]:
    """Whether the fast path serves the profile (and why not), and its recent warnings."""
    from keybroker import events  # noqa: PLC0415
    from keybroker.config.index import status  # noqa: PLC0415

    label = f"profile '{name}'"
    checks: list[Check] = []
    if cache is not None:
        why = status(config, env, str(cache.root), name)
        checks.append(
            Check(
                not why,
                f"{label} fast path",
                why or "ready",
                ""
                if not why
                else "fix what it names; until then every call takes "
                "the full path (about twice as slow)",
            )
        )
    # history, not a check: only this config's events (another config may use the same
    # profile name), each with its time
    mine = [
        event
        for event in events.read(env, name)
        if event.get("config") == str(config.path)
        and event.get("kind")
        in ("stale-served", "refresh-failed", "backoff", "refusal", "short-lived")
    ]
    for event in mine[-3:]:
        checks.append(Past(True, f"{label} past event", events.render(event)))
    return checks


def one_prefix(message: str, where: str, source: str) -> str:
    """A message without the prefixes the line already shows ("profile 'x'", the source's
    name) and without a prefix repeated ("http://…: … http://…: cannot connect")."""
    raw = [part for part in message.split(": ") if part not in (where, source)]
    parts: list[str] = []
    for i, part in enumerate(raw):
        if (parts and parts[-1] == part) or (
            i + 1 < len(raw) and raw[i + 1].startswith(part + " ")
        ):
            continue  # "http://…: http://… is not a Vault server": the address once
        parts.append(part)
    return ": ".join(parts)


def _detail(message: str, where: str, source: str) -> str:
    """An error message without the "profile 'x': " the line already starts with, led by
    the source's name once."""
    return f"{source}: {one_prefix(message, where, source)}"


def check_claude_settings(
    env: Mapping[str, str], config: Any, managed: str | None = None
) -> tuple[list[Check], list[str], Any]:
    """The precedence lint of :mod:`keybroker.claude.precedence`.

    Returns the checks, the helper commands found in any scope, and the merged view
    (:class:`~keybroker.claude.precedence.Effective`: TTL, winning helper, and where each
    came from).
    """
    from keybroker.claude import precedence  # noqa: PLC0415

    stack = precedence.layers(env, managed=managed)
    eff = precedence.effective(env, stack)
    checks = [
        check_helper_ttl(eff) if c.label == "claude helper TTL" else c
        for c in precedence.lint(eff, config.profiles, config.path, getattr(config, "extra", None))
    ]
    helpers = [
        str(layer.data["apiKeyHelper"])
        for layer in stack
        if layer.data and layer.data.get("apiKeyHelper") and not layer.ignored_by
    ]
    return checks, helpers, eff


def _sh_lookup(name: str, path_value: str, env: Mapping[str, str]) -> str | None:
    """What ``/bin/sh -c 'command -v NAME'`` finds with PATH=``path_value``."""
    child_env = dict(env, PATH=path_value)
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", 'command -v -- "$1"', "sh", name],
            env=child_env,
            capture_output=True,
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = proc.stdout.decode(errors="replace").strip()
    return found if proc.returncode == 0 and found else None


def check_path(env: Mapping[str, str], helpers: list[str]) -> list[Check]:
    """PATH as /bin/sh sees it now, and for bare helper commands under a minimal PATH."""
    import shlex  # noqa: PLC0415

    if not os.path.exists("/bin/sh"):
        return [Check(True, "PATH", "/bin/sh not present (not a POSIX system)")]
    bare: list[str] = []
    for helper in helpers:
        try:
            first = shlex.split(helper)[0]
        except (ValueError, IndexError):
            continue
        if "/" not in first and first not in bare:
            bare.append(first)
    checks: list[Check] = []
    found = _sh_lookup("keybroker", env.get("PATH", ""), env)
    if found:
        checks.append(Check(True, "PATH", f"/bin/sh finds keybroker at {found}"))
    elif bare:
        checks.append(
            Check(
                False,
                "PATH",
                "/bin/sh does not find keybroker on PATH, and apiKeyHelper runs it by name",
                "run keybroker claude configure PROFILE (it writes an absolute path) or use the "
                "helpers/keybroker-helper.sh wrapper",
            )
        )
    else:
        checks.append(
            Check(
                True,
                "PATH",
                "/bin/sh does not find keybroker on PATH (fine "
                "while apiKeyHelper uses an absolute path)",
            )
        )
    for first in bare:
        if _sh_lookup(first, MINIMAL_PATH, env) is None:
            checks.append(
                Check(
                    False,
                    "PATH",
                    f"apiKeyHelper runs '{first}' by name, which a minimal PATH "
                    f"({MINIMAL_PATH}, as IDEs and launchd use) does not find",
                    "run keybroker claude configure PROFILE (it writes an absolute path)",
                )
            )
    return checks


def check_helper_ttl(eff: Any) -> Check:
    """Claude Code's helper TTL as it is written (``eff``: the merged settings of
    :mod:`keybroker.claude.precedence`): ✗ when it is not whole milliseconds (``5m``, ``-1``)
    or 0 — keybroker's own helper refuses such a value (exit 2) —, ⚠ when it is so small it
    was surely meant in seconds (every call then reaches the source), ✓ otherwise."""
    import re  # noqa: PLC0415

    from keybroker.claude.deployments import TTL_VAR  # noqa: PLC0415
    from keybroker.durations import format_duration, parse_duration  # noqa: PLC0415

    label = "claude helper TTL"
    raw = eff.env.get(TTL_VAR)
    if raw is None:
        return Check(True, label, f"{TTL_VAR}=300000 (5m 0s): Claude Code's default (not set)")
    origin = eff.env_source.get(TTL_VAR, "settings")
    text = str(raw).strip()
    configure = "keybroker claude configure PROFILE --ttl"
    if not re.fullmatch(r"[0-9]+", text):
        fix = f'set it to whole milliseconds, e.g. "300000" for 5 minutes ({configure} 5m)'
        try:
            seconds = parse_duration(text)
        except ValueError:
            seconds = 0.0
        if seconds > 0:
            fix = (
                f'for {format_duration(seconds)} set "{round(seconds * 1000)}" ({configure} {text})'
            )
        why = "negative" if text.startswith("-") else "not a whole number of milliseconds"
        return Check(
            False,
            label,
            f"{TTL_VAR}={raw!r} in the {origin} is {why}: Claude Code "
            "cannot use it and keybroker's helper refuses it (exit 2)",
            fix,
        )
    ms = int(text)
    if ms == 0:
        return Check(
            False,
            label,
            f"{TTL_VAR}=0 in the {origin}: Claude Code would run the helper before every request",
            f'set it to whole milliseconds, e.g. "300000" ({configure} 5m)',
        )
    if ms < SECONDS_LIKE_TTL_MS:
        return Warn(
            True,
            label,
            f"{TTL_VAR}={ms} in the {origin} is "
            f"{format_duration(ms / 1000, sub_second=True)}: looks "
            "like seconds, Claude Code reads milliseconds (every call goes to the "
            "source)",
            f'for {ms} seconds set "{ms * 1000}" ({configure} {ms}s)',
        )
    return Check(True, label, f"{TTL_VAR}={ms} ({format_duration(ms / 1000)}) from the {origin}")
