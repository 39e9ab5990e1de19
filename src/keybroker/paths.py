"""Default locations, computed in a few lines that match platformdirs.

Importing platformdirs (and pathlib) costs ~15 ms on every helper run; these rules are what
platformdirs does for ``appname="keybroker"`` on Linux and macOS (tests compare both). Windows
defers to it. The ``*_str`` functions are for the cache-hit path, which avoids pathlib too.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

APP = "keybroker"


def _home() -> str:
    return os.path.expanduser("~")


def _xdg(env: Mapping[str, str], var: str, fallback: str) -> str:
    value = env.get(var, "").strip()
    return value if value else os.path.join(_home(), fallback)


def _platformdirs(kind: str) -> str:
    import platformdirs  # noqa: PLC0415 - only on platforms the fast rules do not cover

    getter = getattr(platformdirs, f"user_{kind}_dir")
    return str(getter(APP, appauthor=False))


#: Variables that name one CI job, by platform (GitHub Actions' RUNNER_TEMP is per job).
_JOB_IDS = (
    "CI_JOB_ID",
    "BUILDKITE_JOB_ID",
    "CIRCLE_WORKFLOW_JOB_ID",
    "TRAVIS_JOB_ID",
    "BUILD_TAG",
    "SYSTEM_JOBID",
    "BITBUCKET_STEP_UUID",
    "DRONE_BUILD_NUMBER",
)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def ci_job_dir(env: Mapping[str, str]) -> str | None:
    """Under CI, a private directory of this job for the cache, the data key and logins.

    On shell-executor and self-hosted runners, jobs of many repositories run as one OS user
    with a persistent home: a shared ``~/.cache`` would let one job's cached key or login serve
    another. So under ``CI=true`` (or GitHub Actions / GitLab CI) everything lives in a per-job
    dir: ``$RUNNER_TEMP/keybroker`` on GitHub, else ``<tmp>/keybroker-<uid>-<job id>`` from the
    platform's job id, else per login session. ``KEYBROKER_CI_ISOLATION=off`` (or explicit
    ``KEYBROKER_CACHE_DIR``/``KEYBROKER_DATA_DIR``) keeps the user's dirs.
    """
    if not (
        _truthy(env.get("CI"))
        or _truthy(env.get("GITHUB_ACTIONS"))
        or _truthy(env.get("GITLAB_CI"))
    ):
        return None
    if env.get("KEYBROKER_CI_ISOLATION", "").strip().lower() in ("off", "0", "false", "no"):
        return None
    runner_temp = env.get("RUNNER_TEMP", "").strip()
    if runner_temp and _truthy(env.get("GITHUB_ACTIONS")):
        return os.path.join(runner_temp, APP)
    job = next((env[k] for k in _JOB_IDS if env.get(k, "").strip()), "")
    if not job and env.get("GITHUB_RUN_ID"):
        parts = (env["GITHUB_RUN_ID"], env.get("GITHUB_JOB", ""), env.get("GITHUB_RUN_ATTEMPT", ""))
        job = "-".join(parts)
    if not job:
        job = f"sid{os.getsid(0)}" if hasattr(os, "getsid") else "ci"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in job)[:80]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    base = env.get("TMPDIR", "").strip() or "/tmp"  # noqa: S108 - a private 0700 dir is made in it
    return os.path.join(base, f"{APP}-{uid}-{safe}")


def _user_dir(
    env: Mapping[str, str], override: str, kind: str, mac: str, xdg: str, xdg_default: str
) -> str:
    """A per-user keybroker dir of ``kind`` (cache, data): the ``override`` variable, else the
    CI job's own dir, else the platform's place (``mac`` under ~/Library, platformdirs on
    Windows, ``xdg`` or ``xdg_default`` under the home elsewhere)."""
    chosen = env.get(override)
    if chosen:
        return chosen
    job = ci_job_dir(env)
    if job:
        return os.path.join(job, kind)
    if sys.platform == "darwin":
        return os.path.join(_home(), "Library", mac, APP)
    if sys.platform == "win32":
        return _platformdirs(kind)
    return os.path.join(_xdg(env, xdg, xdg_default), APP)


def cache_dir_str(env: Mapping[str, str] = os.environ) -> str:
    """Where cache entries, locks and the profile index live (``KEYBROKER_CACHE_DIR``)."""
    return _user_dir(env, "KEYBROKER_CACHE_DIR", "cache", "Caches", "XDG_CACHE_HOME", ".cache")


def config_file_str(env: Mapping[str, str] = os.environ) -> str:
    """The TOML config (``KEYBROKER_CONFIG``)."""
    override = env.get("KEYBROKER_CONFIG")
    if override:
        return override
    if sys.platform == "darwin":
        return os.path.join(_home(), "Library", "Application Support", APP, "config.toml")
    if sys.platform == "win32":
        return os.path.join(_platformdirs("config"), "config.toml")
    return os.path.join(_xdg(env, "XDG_CONFIG_HOME", ".config"), APP, "config.toml")


#: The system layer an administrator ships (profiles for everyone on the machine).
SYSTEM_CONFIG = "/etc/keybroker/config.toml"


def system_config_str(env: Mapping[str, str] = os.environ) -> str | None:
    """The system config (``KEYBROKER_SYSTEM_CONFIG``; ``""`` or ``none`` turns it off)."""
    override = env.get("KEYBROKER_SYSTEM_CONFIG")
    if override is not None:
        return None if override.strip().lower() in ("", "none", "off") else override
    if sys.platform == "win32":
        return None
    return SYSTEM_CONFIG


def data_dir_str(env: Mapping[str, str] = os.environ) -> str:
    """Where the cache's data key lives, apart from the cache (``KEYBROKER_DATA_DIR``)."""
    return _user_dir(
        env, "KEYBROKER_DATA_DIR", "data", "Application Support", "XDG_DATA_HOME", ".local/share"
    )


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    from pathlib import Path  # noqa: PLC0415

    return Path(cache_dir_str(env))


def config_file(env: Mapping[str, str] = os.environ) -> Path:
    from pathlib import Path  # noqa: PLC0415

    return Path(config_file_str(env))


def data_dir(env: Mapping[str, str] = os.environ) -> Path:
    from pathlib import Path  # noqa: PLC0415

    return Path(data_dir_str(env))
