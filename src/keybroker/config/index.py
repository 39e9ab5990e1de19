"""Building the hit path's narrow index from a validated config (see keybroker.cache.index).

Per profile it records only primitives: the source name, the source's default storage, the
profile's options, and per environment *variant* the request digest, the identity inputs and,
for ``env``/``file`` profiles, where the key can be read directly. A source's ``canonical()``
and ``identity_inputs()`` may read the environment (``VAULT_ADDR``, ``AWS_PROFILE``): each
variant records the variables they read, and the hit path uses a variant only while those are
unchanged; the full path adds the variant of a new environment (:func:`remember`).

When a profile cannot be indexed (its source fails to load, a setting is invalid) the reason
is kept in the index's ``problems``, which ``print-token`` and ``doctor`` show: a profile that
silently never gets a fast hit would be a slow mystery.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keybroker import paths
from keybroker.cache.index import (
    INDEX_VERSION,
    Record,
    env_fingerprint,
    read_index,
    signatures,
    write_index,
)

#: How many environment variants of a profile the index keeps.
MAX_VARIANTS = 4


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers which variables were looked up, and their values."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.seen: dict[str, str | None] = {}

    def __getitem__(self, key: str) -> str:
        self.seen[key] = self._env.get(key)
        return self._env[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.seen[key] = self._env.get(key)
        return self._env.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.seen[key] = self._env.get(key)
        return key in self._env

    def __iter__(self) -> Any:
        raise TypeError("a source's canonical() must look variables up by name")

    def __len__(self) -> int:
        return len(self._env)


def variant(
    source_name: str, settings: Mapping[str, Any], env: Mapping[str, str], key: Any
) -> dict[str, Any]:
    """The index variant of a request in this environment (raises what the source raises).

    The variables the source looked at are kept as keyed fingerprints (``key`` is the cache's
    data key): enough to tell whether the environment changed, nothing that reveals a value.
    """
    from keybroker.cache.digest import request_digest  # noqa: PLC0415
    from keybroker.sources.base import get_source, identity_places  # noqa: PLC0415

    source = get_source(source_name)
    recording = RecordingEnv(env)
    canonical = source.canonical(settings, recording)
    inputs = [list(item) for item in identity_places(source, settings, recording)]
    direct = source.direct_read(settings)
    return {
        "env": {k: env_fingerprint(key, k, v) for k, v in recording.seen.items()},
        "digest": request_digest(source_name, canonical),
        "inputs": inputs,
        "direct": list(direct) if direct else None,
    }


def _entry(
    source_name: str,
    settings: Mapping[str, Any],
    options: Mapping[str, Any],
    env: Mapping[str, str],
    key: Any,
) -> dict[str, Any]:
    from keybroker.sources.base import get_source  # noqa: PLC0415

    return {
        "source": source_name,
        "storage": get_source(source_name).default_storage,
        "options": dict(options),
        "settings": _storable(settings),
        "variants": [variant(source_name, settings, env, key)],
    }


def _storable(settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The profile's settings as the index can keep them (None: a value marshal cannot store,
    such as a TOML date: then a miss reads the config as before). Settings never hold a secret
    (a config names where secrets are), so they may sit beside the fingerprints."""
    import marshal  # noqa: PLC0415

    plain = dict(settings)
    try:
        marshal.dumps(plain)
    except ValueError:
        return None
    return plain


def build(config: Any, env: Mapping[str, str], key: Any) -> dict[str, Any]:
    """The index of ``config`` in this environment."""
    data: dict[str, Any] = {
        "v": INDEX_VERSION,
        "files": signatures(_files(config, env)),
        "defaults": dict(config.defaults),
        "profiles": {},
        "standalone": {},
        "problems": {},
    }
    for name, profile in config.profiles.items():
        try:
            data["profiles"][name] = _entry(
                profile.source, profile.settings, profile.options, env, key
            )
        except Exception as exc:
            data["problems"][name] = _why(exc)
    return data


def _files(config: Any, env: Mapping[str, str]) -> list[str]:
    system = paths.system_config_str(env)
    return [str(config.path)] + ([system] if system else [])


def _why(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or type(exc).__name__
    return f"not indexed: {message}"


def _key(env: Mapping[str, str]) -> Any:
    from keybroker.cache.crypto import key_store, load_data_key  # noqa: PLC0415
    from keybroker.errors import KeybrokerError  # noqa: PLC0415

    try:
        return load_data_key(paths.data_dir(env), create=True, store=key_store(env))
    except (KeybrokerError, OSError):
        return None


def _read(config: Any, env: Mapping[str, str], cache_dir: str, key: Any) -> dict[str, Any] | None:
    system = paths.system_config_str(env)
    return read_index(cache_dir, str(config.path), key, system)


def refresh(config: Any, env: Mapping[str, str], cache_dir: str, key: Any = None) -> str:
    """Rebuild the index when it is missing or stale; returns why it could not be, or "".

    ``key``: the data key if the caller has it loaded already.
    """
    key = key or _key(env)
    if key is None:
        return "no data key (the cache directory or data key cannot be used)"
    if _read(config, env, cache_dir, key) is not None:
        return ""
    return write_index(cache_dir, str(config.path), key, build(config, env, key))


def status(config: Any, env: Mapping[str, str], cache_dir: str, profile: str) -> str:
    """Why ``profile`` would not be served by the fast path here, or "" when it would be."""
    key = _key(env)
    if key is None:
        return "no data key yet"
    data = _read(config, env, cache_dir, key)
    if data is None:
        why = write_index(cache_dir, str(config.path), key, build(config, env, key))
        if why:
            return why
        data = _read(config, env, cache_dir, key)
        if data is None:
            return "the index could not be read back"
    if profile in data["problems"]:
        return str(data["problems"][profile])
    raw = data["profiles"].get(profile)
    if raw is None:
        return "not in the index"
    if Record(raw).variant(env, key) is not None:
        return ""
    return "this environment differs from the indexed ones (it is added after the next call)"


def remember(
    config: Any,
    env: Mapping[str, str],
    cache_dir: str,
    slot: str,
    name: str,
    source_name: str,
    settings: Mapping[str, Any],
    options: Mapping[str, Any],
    key: Any = None,
) -> None:
    """Add this environment's variant of a request under ``slot``: "profiles" (by profile
    name), or "standalone" (a ``keybroker-<source>`` command line, by
    :func:`keybroker.fastpath.argv.standalone_key`); one whose entry cannot be named (a setting
    the source refuses) is simply not added."""
    key = key or _key(env)
    if key is None:
        return
    try:
        entry = _entry(source_name, settings, options, env, key)
    except Exception:
        return
    data = _read(config, env, cache_dir, key)
    if data is None:
        return
    current = data[slot].get(name)
    if (
        current is None
        or current.get("options") != entry.get("options")
        or (current.get("source") != entry.get("source"))
    ):
        data[slot][name] = entry
    else:
        fresh = entry["variants"][0]
        if fresh in current["variants"]:
            return
        current["variants"] = [fresh, *current["variants"]][:MAX_VARIANTS]
    write_index(cache_dir, str(config.path), key, data)


def remember_profile(
    config: Any, env: Mapping[str, str], cache_dir: str, name: str, key: Any = None
) -> None:
    """After the fast path missed this environment's variant: add it."""
    profile = config.profiles.get(name)
    if profile is not None:
        remember(
            config,
            env,
            cache_dir,
            "profiles",
            name,
            profile.source,
            profile.settings,
            profile.options,
            key,
        )


__all__ = [
    "RecordingEnv",
    "build",
    "refresh",
    "remember",
    "remember_profile",
    "status",
    "variant",
]
