"""``keybroker ci export``: hand a profile's key to the next CI steps without logging it.

Keys are resolved exactly as ``keybroker get`` resolves them (same cache, same rules); only
the way they leave the process differs. ``github`` is the careful one: masks first, then the
value goes to ``$GITHUB_ENV`` and nowhere else. ``gitlab`` writes a dotenv report file.
``shell``/``dotenv``/``json`` print to stdout for capture by the caller, who must check the
exit status before using it (``v="$(keybroker ci export P)" || exit; eval "$v"``): a bare
``eval "$(…)"`` would go on with no key when keybroker fails.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

import click

from keybroker import output as formats
from keybroker.cache.files import atomic_write
from keybroker.cli.common import resolve_profiles
from keybroker.cli.errors import config_option, debug_option, handles_errors, no_cache_option
from keybroker.errors import CacheError, UsageError
from keybroker.output import check_var_name, plain_env
from keybroker.paths import ci_job_dir
from keybroker.redact import emit

DEFAULT_VAR = "ANTHROPIC_AUTH_TOKEN"


def parse_vars(profile: str | None, specs: Sequence[str]) -> list[tuple[str, str]]:
    """``--var NAME`` / ``--var NAME=PROFILE`` options → ``[(NAME, PROFILE), …]``.

    A bare ``NAME`` takes the PROFILE argument; with no ``--var`` at all the PROFILE goes to
    ``ANTHROPIC_AUTH_TOKEN``. A name given twice is an error (which one would win?).
    """

    pairs: list[tuple[str, str]] = []
    for spec in specs or [DEFAULT_VAR]:
        name, sep, named = spec.partition("=")
        target = named if sep else profile
        if not target:
            raise UsageError(
                f"--var {spec}: no profile for {name or spec!r}",
                "give a PROFILE argument or write --var NAME=PROFILE",
            )
        if any(existing == name for existing, _ in pairs):
            raise UsageError(f"--var {name} is given more than once")
        pairs.append((check_var_name(name), target))
    return pairs


def write_private(path: Path, text: str, *, append: bool) -> None:
    """Append/write ``text`` to ``path`` created 0600; never through a symlink someone planted.

    Only for ``$GITHUB_ENV``, a file the runner owns and reads back by path. Files keybroker
    chooses the content of go through :func:`replace_private`.
    """
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    flags |= os.O_APPEND if append else os.O_TRUNC
    fd = os.open(path, flags, 0o600)
    try:
        _write_fd(fd, text.encode())
    finally:
        os.close(fd)


def _write_fd(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def check_target(path: Path) -> bool:
    """Whether ``path`` exists; exit 2 if it is something keybroker must not replace.

    A symlink (it could lead anywhere), anything but a regular file, or a file another user
    owns: writing into such a file would keep its owner and mode, so whoever could read it
    before could read the key.
    """

    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise UsageError(f"cannot use {path}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise UsageError(
            f"{path} is a symlink; keybroker does not write keys through symlinks",
            "remove it, or give the path of a regular file",
        )
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path} is not a regular file", "give another path")
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        raise UsageError(
            f"{path} belongs to another user (uid {info.st_uid}); keybroker will not put a key "
            "in a file someone else owns",
            "remove the file first, or choose a path in a directory only you can write",
        )
    return True


def check_directory(directory: Path) -> None:
    """Exit 2 if someone else could swap the file after keybroker wrote it.

    Nobody else can read the 0600 file, but in a directory group or others may write without
    the sticky bit they could replace it by theirs before the next CI step reads it, and
    choose its variables. (A directory another user owns is accepted: CI jobs running as
    root in a container write into the runner user's workspace.)
    """

    try:
        info = directory.stat()
    except OSError as exc:
        raise UsageError(f"cannot use {directory}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        raise UsageError(
            f"{directory} is not a safe place for a key file: others can write it, so the "
            "file could be swapped after keybroker writes it",
            "write to a directory only you (or root) can change, e.g. $RUNNER_TEMP or the "
            "job's build directory",
        )


def replace_private(path: Path, text: str) -> None:
    """Put ``text`` at ``path`` as a new 0600 file of ours, atomically.

    :func:`keybroker.cache.files.atomic_write` writes a fresh file (``O_EXCL``, random name)
    in the same directory, which then replaces ``path`` by ``rename``: whatever file was
    there before (its owner, mode and any open descriptors) never sees the key, and a reader
    sees the old or the new file whole. The target is checked again just before the swap.
    """

    check_target(path)
    directory = path.parent
    check_directory(directory)
    try:
        atomic_write(path, text.encode(), before_replace=lambda: check_target(path))
    except OSError as exc:
        if exc.filename is not None and exc.filename2 is None:  # creating the temp file
            raise UsageError(
                f"cannot write in {directory}: {exc.strerror}", "choose a directory you can write"
            ) from None
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def _replace_dotenv(path: Path, pairs: Sequence[tuple[str, str]]) -> str:
    """The file's existing lines minus the names being set, then the new lines (GitLab's
    plain ``NAME=value``)."""

    names = {name for name, _ in pairs}
    kept: list[str] = []
    old = ""
    if check_target(path):
        try:
            with open(path, encoding="utf-8", opener=_no_follow) as handle:
                old = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise UsageError(f"cannot read {path}: {reason}") from None
    for line in old.splitlines():
        if line.partition("=")[0].strip() not in names:
            kept.append(line + "\n")
    return "".join(kept) + plain_env(pairs)


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))


def export(
    pairs: Sequence[tuple[str, str]],
    fmt: str,
    env: Mapping[str, str],
    output: str | None,
) -> None:
    """Deliver ``(NAME, value)`` pairs in ``fmt``; see the module docstring for where to."""

    names = ", ".join(name for name, _ in pairs)
    if fmt == "github":
        if output:
            raise UsageError(
                "--output/--dotenv-file is not used with --format github",
                "the value goes to $GITHUB_ENV",
            )
        target = env.get("GITHUB_ENV", "")
        if not target:
            raise UsageError(
                "GITHUB_ENV is not set: --format github only works inside a GitHub Actions job",
                "outside GitHub Actions use --format shell, dotenv or json",
            )
        # The masks go first: once the runner has read them, nothing later can show the value.
        click.echo(formats.github_mask_lines(v for _, v in pairs), nl=False)
        blocks = "".join(formats.github_env_block(n, v) for n, v in pairs)
        try:
            write_private(Path(target), blocks, append=True)
        except OSError as exc:
            raise UsageError(f"cannot append to $GITHUB_ENV ({target}): {exc.strerror}") from None
        emit(f"keybroker: exported {names} to $GITHUB_ENV (masked in this job's logs)")
        return
    if fmt == "gitlab":
        if not output:
            raise UsageError(
                "--format gitlab needs --dotenv-file PATH (the file named in "
                "artifacts:reports:dotenv)",
                'or, to keep the key inside this job, use: kb_env="$(keybroker ci export '
                'PROFILE --format shell)" || exit; eval "$kb_env"',
            )
        path = Path(output)
        replace_private(path, _replace_dotenv(path, pairs))
        emit(
            f"keybroker: wrote {names} to {path}; GitLab does not mask dotenv variables: "
            "keep the key out of job output"
        )
        return
    render = {"shell": formats.shell, "dotenv": formats.dotenv, "json": formats.json_object}
    text = render[fmt](pairs)
    if output:
        replace_private(Path(output), text)
        emit(f"keybroker: wrote {names} to {output}")
    else:
        click.echo(text, nl=False)


@click.group("ci")
def ci() -> None:
    """Hand keys to CI jobs (GitHub Actions, GitLab CI, any shell) without logging them."""


@ci.command("export")
@click.argument("profile", required=False)
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME[=PROFILE]",
    help=f"Variable to set (default {DEFAULT_VAR}); NAME=PROFILE for another profile; repeatable.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["github", "gitlab", "shell", "dotenv", "json"]),
    default="shell",
    show_default=True,
    help="How to hand the value over.",
)
@click.option(
    "--dotenv-file",
    "--output",
    "-o",
    "output",
    type=click.Path(dir_okay=False),
    help="Write to this file (0600) instead of stdout; required for gitlab "
    "(the artifacts:reports:dotenv file).",
)
@no_cache_option
@config_option
@debug_option
@handles_errors
def export_cmd(
    profile: str | None,
    variables: tuple[str, ...],
    fmt: str,
    output: str | None,
    no_cache: bool,
    config_path: str | None,
    debug: bool,
) -> None:
    """Export PROFILE's key as an environment variable for later CI steps.

    \b
    github   ::add-mask:: lines on stdout, then NAME=value appended to $GITHUB_ENV
    gitlab   NAME=value into the dotenv report file given by --dotenv-file
    shell    export NAME='value'   (for: v="$(keybroker ci export P)" || exit; eval "$v")
    dotenv   NAME=value
    json     {"NAME": "value"}
    """
    pairs = parse_vars(profile, variables)
    env, outcomes = resolve_profiles(
        [p for _, p in pairs], config_path, no_cache=no_cache, debug=debug
    )
    export([(name, outcomes[p].value) for name, p in pairs], fmt, env, output)


@ci.command("cleanup")
@debug_option
@handles_errors
def cleanup_cmd(debug: bool) -> None:
    """Remove this CI job's private directory: its cache, data key and logins.

    \b
    Under CI keybroker keeps everything in a per-job dir, /tmp/keybroker-<uid>-<job id>
    (GitHub: $RUNNER_TEMP/keybroker, which the runner empties itself). Shell and
    self-hosted runners keep /tmp between jobs, so run this at the end of the job
    (GitLab: after_script). Only a directory of yours is removed; a link or another
    user's directory is refused (exit 7).
    """
    job = ci_job_dir(os.environ)
    if job is None:
        emit(
            "keybroker: not in a CI job (CI, GITHUB_ACTIONS and GITLAB_CI are not set); "
            "nothing to remove"
        )
        return
    try:
        info = os.lstat(job)
    except FileNotFoundError:
        emit(f"keybroker: {job} does not exist; nothing to remove")
        return
    except OSError as exc:
        raise CacheError(f"cannot inspect {job}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise CacheError(
            f"{job} is not a directory (a link?); not removing it",
            "look at who created it; keybroker only removes its own directory",
        )
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise CacheError(
            f"{job} belongs to uid {info.st_uid}, not to you; not removing it",
            "another user created it: its owner or root can remove it",
        )
    try:
        shutil.rmtree(job)  # never follows links inside (fd-based where the OS allows)
    except OSError as exc:
        raise CacheError(f"cannot remove {job}: {exc.strerror}") from None
    emit(f"keybroker: removed {job}")
