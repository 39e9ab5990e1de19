"""The public source contract: what a third-party source imports (and nothing else).

A source turns a request's settings into a :class:`Secret`. Write one by subclassing
:class:`BaseSource`, declare its settings, and register the object either in the
``keybroker.sources`` entry-point group of your package (how keybroker finds it) or, in tests,
with :func:`register`. docs/sources/writing-a-source.md walks through it; the contract suite in
:mod:`keybroker.testing` checks it.

Rules that keep the cache correct and fast (the contract suite tests each):

1. **Import cheaply.** Import your SDK inside ``fetch``/``revalidate``/``doctor``, never at
   module level.
2. **``canonical()`` is pure**: every setting that changes the answer, defaults filled in,
   environment read *by key only* (``env.get("X")``), no network. The fast path's index
   records the variables it read; iterating the environment makes the profile never hit.
3. **``identity_inputs()`` names where the credentials come from** (``("env", NAME)``,
   ``("file", PATH)``, ``("literal", TEXT)``, ``("env-suffix", SUFFIX)``), never their values:
   the cache binds each entry to them, so a caller the backend would refuse never gets
   another caller's key. It has no default: a request that presents no credential returns
   :class:`NoIdentity` with the reason its entries may be shared.
4. **Errors are** :class:`keybroker.errors.KeybrokerError` **subclasses** with the output
   contract's exit codes, messages built from names, never from secret values; register every
   secret you obtain with ``ctx.sensitive(value)``.
5. **Expiry** (``Secret.expires_at``) is epoch seconds, finite, and not absurdly far away.
"""

from __future__ import annotations

from keybroker.errors import (
    AccessDenied,
    CacheError,
    ConfigError,
    InvalidSecret,
    KeybrokerError,
    LoginRequired,
    SecretNotFound,
    SourceUnavailable,
    Unreachable,
    UsageError,
)
from keybroker.model import AuxEntry, Request, Secret
from keybroker.sources.base import (
    ENTRY_POINT_GROUP,
    SETTING_KINDS,
    AuxStore,
    BaseSource,
    Check,
    FetchContext,
    IdentityInputs,
    NoIdentity,
    Setting,
    SettingKind,
    Source,
    get_source,
    register,
    unregister,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "SETTING_KINDS",
    "AccessDenied",
    "AuxEntry",
    "AuxStore",
    "BaseSource",
    "CacheError",
    "Check",
    "ConfigError",
    "FetchContext",
    "IdentityInputs",
    "InvalidSecret",
    "KeybrokerError",
    "LoginRequired",
    "NoIdentity",
    "Request",
    "Secret",
    "SecretNotFound",
    "Setting",
    "SettingKind",
    "Source",
    "SourceUnavailable",
    "Unreachable",
    "UsageError",
    "get_source",
    "register",
    "unregister",
]
