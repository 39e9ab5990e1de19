"""The Source protocol, the settings schema, and the registry.

Plugins import the public contract from :mod:`keybroker.sources.api` (which re-exports what is
defined here); docs/sources/writing-a-source.md explains the rules and
:mod:`keybroker.testing` checks them. A source module must stay cheap to import: the full path
imports it on every miss, so hvac/boto3/keyring/requests are imported inside ``fetch``.
Third-party sources register an object with this interface in the ``keybroker.sources``
entry-point group (or, in tests, with :func:`register`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, NamedTuple, Protocol, get_args, runtime_checkable

from keybroker.errors import UsageError
from keybroker.model import AuxEntry, Deadline, Request, Secret
from keybroker.redact import masked_repr, sensitive

__all__ = [
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "SETTING_KINDS",
    "AuxEntry",
    "AuxStore",
    "BaseSource",
    "Check",
    "FetchContext",
    "IdentityInputs",
    "NoIdentity",
    "Setting",
    "SettingKind",
    "Source",
    "available_sources",
    "coerce",
    "get_source",
    "identity_places",
    "register",
    "unregister",
]

#: What a setting's value may be, in config and as a flag (``coerce`` checks it).
SettingKind = Literal["str", "int", "bool", "duration", "argv", "str_list", "str_or_argv", "table"]
SETTING_KINDS: tuple[str, ...] = get_args(SettingKind)

ENTRY_POINT_GROUP = "keybroker.sources"

#: Built-in sources: name → "module:attribute". Modules load only when a profile uses them.
BUILTINS: dict[str, str] = {
    "env": "keybroker.sources.env:SOURCE",
    "file": "keybroker.sources.file:SOURCE",
    "command": "keybroker.sources.command:SOURCE",
    "keychain": "keybroker.sources.keychain:SOURCE",
    "vault": "keybroker.sources.vault:SOURCE",
    "aws": "keybroker.sources.aws:SOURCE",
    "oidc": "keybroker.sources.oidc:SOURCE",
    "demo": "keybroker.sources.demo:SOURCE",
}


class Setting(NamedTuple):
    """One key a source accepts, in config (``name``) and as a standalone flag.

    - ``kind``: what the value may be (:data:`SETTING_KINDS`; :func:`coerce` checks config and
      flag values against it, so ``fetch`` never sees a string where it expects a list);
    - ``required``: a request without it is a usage error (exit 2) before the source runs;
    - ``identity``: the setting changes the answer, so ``canonical()`` must include it and it is
      part of the entry name (the kit checks this); ``False`` for what only changes *how* the
      answer is fetched (timeouts, TLS verification, where a credential is read from);
    - ``choices``: the only values accepted (``--x`` refuses others with exit 2);
    - ``flag``: the standalone helper's flag when it is not ``--`` + the name with dashes.
    """

    name: str
    kind: SettingKind = "str"
    help: str = ""
    required: bool = False
    identity: bool = True
    choices: tuple[str, ...] | None = None
    flag: str | None = None

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


class AuxStore(Protocol):
    """Encrypted storage for a source's own credentials (e.g. a Vault login token).

    Everything a source may call on ``ctx.aux``: keybroker's implementation is
    :class:`keybroker.cache.store.CacheAux`.
    """

    def get(self, name: str) -> AuxEntry | None: ...

    def put(self, name: str, entry: AuxEntry) -> None: ...

    def delete(self, name: str) -> None: ...

    def fingerprint(self, *parts: str) -> str:
        """A keyed, non-reversible id of credentials, to name a login stored here by."""
        ...

    def lock(self, name: str, deadline: Deadline) -> AbstractContextManager[Any]:
        """Hold ``name`` against other processes (one refresh-token rotation at a time)."""
        ...


class NoIdentity:
    """``identity_inputs()``'s answer when the request presents no credential of its own.

    Entries are then shared by every caller of this OS user, so say why that is right
    (``NoIdentity("the user's own keychain: the OS login is the identity")``). A source
    cannot get this by forgetting ``identity_inputs``: the method has no default. A plain
    class, not a tuple: it must never pass for a sequence of identity inputs.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"NoIdentity({self.reason!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NoIdentity):
            return NotImplemented
        return self.reason == other.reason

    def __hash__(self) -> int:
        return hash(self.reason)


#: What ``identity_inputs()`` returns: where the credentials come from, or why there are none.
IdentityInputs = Sequence[tuple[str, str]] | NoIdentity


class FetchContext(NamedTuple):
    """What a fetch may use: the deadline, the environment, side storage, flags.

    - ``aux``: encrypted side storage for the source's own credentials (None: nothing kept);
    - ``progress``: called by interactive flows (login) to report progress on stderr;
    - ``no_cache``: ``--no-cache``: cached machine logins (AppRole/JWT tokens, role
      credentials) are not reused; a person's own login is (a helper cannot prompt).

    Immutable, like the other values of a miss (:mod:`keybroker.model` says why they are
    ``NamedTuple`` classes): a source cannot change the call's deadline; the core gives a
    probe its shorter one with ``_replace``.
    """

    deadline: Deadline
    env: Mapping[str, str]
    aux: AuxStore | None = None
    debug: bool = False
    interactive: bool = False
    progress: Callable[[str], None] | None = None
    no_cache: bool = False

    def __repr__(self) -> str:
        # env holds tokens (VAULT_TOKEN, CI_JOB_JWT): never its values
        return masked_repr(self, "env")

    def timeout(self, step: float | None = None) -> float:
        return self.deadline.timeout(step)

    def fingerprint(self, *parts: str) -> str:
        """A keyed, non-reversible id of credentials (never store them in clear).

        Sources name cached logins with it, so a login made with one credential (a CI job's
        ID token, an AppRole secret id) is never reused by a caller presenting another.
        """
        if self.aux is not None:
            return self.aux.fingerprint(*parts)
        import hashlib  # noqa: PLC0415 - no cache: nothing is stored under this name anyway

        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]

    @staticmethod
    def sensitive(value: str | None) -> None:
        """Register a secret so no diagnostic can print it."""
        sensitive(value)


class Check(NamedTuple):
    """One ``doctor`` line: ok or not, what was checked, and the fix when it failed."""

    ok: bool
    label: str
    detail: str = ""
    fix: str = ""


@runtime_checkable
class Source(Protocol):
    """What a source provides. Subclass :class:`BaseSource` to get the defaults."""

    name: str
    default_storage: str

    @property
    def settings(self) -> tuple[Setting, ...]:
        """The settings a profile may give (read-only here, so a class's own tuple fits)."""
        ...

    def canonical(self, settings: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
        """Every setting that changes the answer, defaults filled in, env fallbacks resolved."""
        ...

    def describe(self, settings: Mapping[str, Any]) -> str:
        """A short, secret-free label such as ``secret/litellm#key``."""
        ...

    def identity_inputs(
        self, settings: Mapping[str, Any], env: Mapping[str, str]
    ) -> IdentityInputs:
        """Where the credentials this request would present come from, or :class:`NoIdentity`.

        ``("env", NAME)``, ``("file", PATH)``, ``("literal", TEXT)`` or ``("env-suffix",
        SUFFIX)`` items; the cache binds each entry to their current content (see
        :mod:`keybroker.cache.ids`). Pure: no network, no SDK import, environment read by key.
        """
        ...

    def direct_read(self, settings: Mapping[str, Any]) -> tuple[str, str] | None:
        """``("env", NAME)`` or ``("file", PATH)`` when the key is exactly that, stripped."""
        ...

    def fetch(self, request: Request, ctx: FetchContext) -> Secret:
        """Obtain the secret now, or raise a KeybrokerError with the right exit code."""
        ...

    def revalidate(self, request: Request, version: str | None, ctx: FetchContext) -> bool | None:
        """Cheaply tell whether ``version`` is still current (True/False), or None: can't tell."""
        ...

    def doctor(self, request: Request, ctx: FetchContext) -> list[Check]:
        """Source-specific diagnosis for ``keybroker doctor``."""
        ...


class BaseSource:
    """Defaults for the optional parts of the protocol (all but ``fetch`` and
    ``identity_inputs``, which every source writes itself)."""

    name = "base"
    settings: tuple[Setting, ...] = ()
    default_storage = "disk"

    def setting(self, name: str) -> Setting:
        for item in self.settings:
            if item.name == name:
                return item
        raise KeyError(name)

    def canonical(self, settings: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
        return {
            item.name: settings.get(item.name)
            for item in self.settings
            if item.identity and settings.get(item.name) is not None
        }

    def describe(self, settings: Mapping[str, Any]) -> str:
        return self.name

    # ``identity_inputs`` has no default on purpose: a source that forgot it would share its
    # entries between callers the backend tells apart. Return the places, or NoIdentity(why).

    def direct_read(self, settings: Mapping[str, Any]) -> tuple[str, str] | None:
        """``("env", NAME)`` or ``("file", PATH)`` when the key is exactly that, stripped.

        Lets the fast path answer ``env``/``file`` profiles without importing the source.
        """
        return None

    def fetch(self, request: Request, ctx: FetchContext) -> Secret:  # pragma: no cover
        raise NotImplementedError

    def revalidate(self, request: Request, version: str | None, ctx: FetchContext) -> bool | None:
        return None

    def doctor(self, request: Request, ctx: FetchContext) -> list[Check]:
        return []


_LOADED: dict[str, Source] = {}


def get_source(name: str) -> Source:
    """The source object for ``name``: a built-in, or one from the entry-point group."""
    if name in _LOADED:
        return _LOADED[name]
    target = BUILTINS.get(name)
    source: Any
    if target is not None:
        module_name, _, attr = target.partition(":")
        source = getattr(importlib.import_module(module_name), attr)
    else:
        source = _from_entry_points(name)
    _LOADED[name] = _check(source, f"source '{name}'")
    return _LOADED[name]


def register(source: Any, name: str | None = None) -> Source:
    """Make ``source`` available under ``name`` (default ``source.name``) in this process.

    For tests and embedding; installed plugins use the ``keybroker.sources`` entry point.
    """
    if isinstance(source, type):
        source = source()
    checked = _check(source, repr(source))
    _LOADED[name or checked.name] = checked
    return checked


#: Every member of :class:`Source`, in the order a message lists the missing ones.
MEMBERS = (
    "name",
    "settings",
    "default_storage",
    "canonical",
    "describe",
    "identity_inputs",
    "direct_read",
    "fetch",
    "revalidate",
    "doctor",
)


def _check(source: Any, what: str) -> Source:
    """``source``, or exit 2 naming the parts of the contract it lacks."""
    missing = [m for m in MEMBERS if not hasattr(source, m)]
    if missing or not isinstance(source, Source):
        raise UsageError(
            f"{what} does not implement the keybroker Source interface "
            f"(missing: {', '.join(missing) or '?'})",
            "see docs/sources/writing-a-source.md",
        )
    return source


def identity_places(
    source: Source, settings: Mapping[str, Any], env: Mapping[str, str]
) -> list[tuple[str, str]]:
    """The source's identity inputs as ``(kind, name)`` pairs; none for :class:`NoIdentity`."""
    answer = source.identity_inputs(settings, env)
    if isinstance(answer, NoIdentity):
        return []
    return [(str(kind), str(name)) for kind, name in answer]


def unregister(name: str) -> None:
    """Forget a source registered with :func:`register` (or loaded earlier)."""
    _LOADED.pop(name, None)


def _from_entry_points(name: str) -> Any:
    from importlib.metadata import entry_points  # noqa: PLC0415 - third-party sources only

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            loaded = ep.load()
            return loaded() if isinstance(loaded, type) else loaded
    raise UsageError(
        f"unknown source '{name}'",
        f"use one of: {', '.join(available_sources())}",
    )


def available_sources() -> list[str]:
    """Built-ins (except the demo) plus installed third-party sources."""
    names = [n for n in BUILTINS if n != "demo"]
    try:
        from importlib.metadata import entry_points  # noqa: PLC0415

        names += [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in names]
    except Exception:  # noqa: S110 - a broken plugin must not hide the built-ins
        pass
    return names


def coerce(setting: Setting, value: Any, where: str) -> Any:
    """Check a config or flag value against the setting's kind; ``where`` prefixes errors."""
    from keybroker.durations import parse_duration  # noqa: PLC0415

    kind = setting.kind
    ok = True
    if kind == "str":
        ok = isinstance(value, str)
    elif kind == "int":
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "bool":
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            value = value.lower() in ("true", "1", "yes")
        ok = isinstance(value, bool)
    elif kind == "duration":
        try:
            value = parse_duration(value)
        except ValueError as exc:
            raise UsageError(f"{where}: {exc}") from None
    elif kind in ("argv", "str_list"):
        ok = isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
    elif kind == "str_or_argv":
        ok = isinstance(value, str) or (
            isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
        )
    elif kind == "table":
        ok = isinstance(value, dict)
    if not ok:
        expected = {
            "str": "a string",
            "int": "an integer",
            "bool": "true or false",
            "argv": "a non-empty list of strings",
            "str_list": "a non-empty list of strings",
            "str_or_argv": "a string or a list of strings",
            "table": "a table",
        }.get(kind, kind)
        raise UsageError(f"{where}: expected {expected}, got {type(value).__name__}")
    if setting.choices is not None and value not in setting.choices:
        raise UsageError(f"{where}: {value!r} is not one of {', '.join(setting.choices)}")
    return value
