"""The helper commands keybroker writes into Claude Code's settings, and how to recognise them.

``apiKeyHelper`` and MCP ``headersHelper`` are shell command lines (Claude Code runs them with
``/bin/sh -c``); ``inferenceCredentialHelper`` is an absolute executable plus an argument list
(``inferenceCredentialHelperArgs``), run without a shell. For a user's own file keybroker
writes the absolute path of its executable (IDEs and launchd start Claude Code with a minimal
PATH); for a file shared with others (``--scope project``, ``--print``) a bare ``keybroker``,
which works for everyone who has it on PATH.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

from keybroker.errors import UsageError

#: Executable names whose commands keybroker wrote (or would write).
HELPER_NAMES = ("keybroker", "keybroker.exe", "keybroker-helper.sh", "keybroker-helper")
#: keybroker subcommands that can stand in a helper setting.
HELPER_VERBS = ("get", "credential", "headers")
PORTABLE = "keybroker"
#: Where a per-machine install puts keybroker on a fleet's Macs (scripts/install.py --system);
#: what a device-management profile names unless --executable says otherwise.
FLEET_EXECUTABLE = "/usr/local/bin/keybroker"
#: Claude Code refuses an inferenceCredentialHelper path or argument outside this (2.1.332).
_INFERENCE_SAFE = re.compile(r'[^"%\x00-\x1f]+\Z')


def keybroker_executable() -> str:
    """The real console script (not a pyenv shim, which costs ~30 ms per run), absolute."""
    name = "keybroker.exe" if sys.platform == "win32" else "keybroker"
    beside = Path(sysconfig.get_path("scripts")) / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("keybroker")
    if found:
        return os.path.abspath(found)
    argv0 = Path(sys.argv[0])
    if argv0.name == name and argv0.is_file():
        return str(argv0.absolute())
    raise UsageError("cannot find the keybroker executable", "pass --executable PATH")


def on_path(name: str = PORTABLE) -> bool:
    """Whether a bare ``name`` resolves on this process's PATH."""
    return shutil.which(name) is not None


#: A word cmd.exe (and Git Bash) take as it is, unquoted.
_WINDOWS_PLAIN = re.compile(r"[A-Za-z0-9_@+=:,./\\-]+\Z")


def quote_word(word: str, platform: str = sys.platform) -> str:
    """One word of a helper command line, quoted for the shell Claude Code runs it with:
    ``/bin/sh`` on POSIX; on Windows ``cmd.exe /d /s /c "…"`` (issue 21, docs/platforms.md),
    where single quotes mean nothing and a path under ``C:\\Users\\Jane Doe`` needs double
    quotes. A double quote or ``%`` cannot be quoted for cmd at all: refused."""
    if platform != "win32":
        return shlex.quote(word)
    if _WINDOWS_PLAIN.match(word):
        return word
    if '"' in word or "%" in word or any(ord(ch) < 32 for ch in word):
        raise UsageError(
            f"cannot quote {word!r} for cmd.exe (a double quote, percent sign or "
            "control character)",
            "use a path and profile name without them",
        )
    return f'"{word}"'


def command_line(
    executable: str,
    verb: str,
    profile: str | None,
    config: str | None = None,
    extra: tuple[str, ...] = (),
    platform: str = sys.platform,
) -> str:
    """A helper command line, every word quoted for the shell Claude Code uses here."""
    words = [executable, verb, *([profile] if profile else []), *extra]
    if config:
        words += ["--config", config]
    return " ".join(quote_word(w, platform) for w in words)


def helper_command(executable: str, profile: str, config: str | None = None) -> str:
    """The apiKeyHelper string: ``<exe> get PROFILE [--config FILE]``."""
    return command_line(executable, "get", profile, config)


def credential_args(profile: str, config: str | None = None) -> list[str]:
    """``inferenceCredentialHelperArgs`` for ``keybroker credential PROFILE``."""
    return ["credential", profile, *(["--config", config] if config else [])]


def check_inference_helper(executable: str, args: list[str]) -> None:
    """What Claude Code checks before it runs inferenceCredentialHelper, checked now.

    The path must be absolute and not end in a dot or space; the path and every argument must
    be non-empty without a double quote, a percent sign or a control character.
    """
    if not os.path.isabs(executable) or executable.endswith((".", " ")):
        raise UsageError(f"inferenceCredentialHelper must be an absolute path: {executable!r}")
    for word in (executable, *args):
        if not _INFERENCE_SAFE.match(word):
            raise UsageError(
                f"Claude Code would refuse {word!r} in inferenceCredentialHelper: no double "
                "quote, percent sign or control character allowed",
                "rename the profile or move the config file",
            )


def parse_helper(command: Any) -> dict[str, Any] | None:
    """If ``command`` is a keybroker helper line (get/credential/headers), its parts; else None."""
    if not isinstance(command, str):
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if len(words) < 2 or os.path.basename(words[0]) not in HELPER_NAMES:
        return None
    verb = words[1]
    if verb not in HELPER_VERBS or (verb != "headers" and len(words) < 3):
        return None
    config = None
    if "--config" in words[:-1]:
        config = words[words.index("--config") + 1]
    rest = [
        w
        for i, w in enumerate(words[2:], 2)
        if not w.startswith("-")
        and words[i - 1] not in ("--config", "--header", "--scheme", "--format")
    ]
    return {
        "executable": words[0],
        "verb": verb,
        "profile": rest[0] if rest else None,
        "config": config,
    }


def is_ours(value: Any) -> bool:
    """A setting keybroker may replace without --force: empty or a keybroker command."""
    return not value or parse_helper(value) is not None
