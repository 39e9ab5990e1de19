"""The hit path's stand-ins for standard modules, each with its fallback forced.

docs/performance.md names the budget each one serves. If a stand-in's fast route goes away
(a Python or cryptography release renames a private module), the fallback must give the very
same results: these tests run the fallback itself.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys

import platformdirs
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keybroker import _hash, paths
from keybroker.cache import crypto


def test_hash_fallback_is_hashlib_and_hmac_matches_the_standard_module() -> None:
    fallback = _hash._load(("no_such_builtin_module",))
    assert fallback is hashlib.sha256
    data, key = os.urandom(100), os.urandom(32)
    assert fallback(data).hexdigest() == hashlib.sha256(data).hexdigest()
    assert _hash.hexdigest(data) == hashlib.sha256(data).hexdigest()
    for k in (key, os.urandom(100)):  # short keys are padded, long keys hashed first
        assert _hash.hmac_sha256(k, data) == hmac.new(k, data, "sha256").hexdigest()


def test_aesgcm_fallback_is_the_public_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crypto, "_AESGCM", None)
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.bindings._rust", None)  # ImportError
    cls = crypto.aesgcm()
    assert cls is AESGCM
    key = crypto.DataKey(os.urandom(32))
    blob = crypto.seal(key, "e" * 64, {"v": 2}, "sk-through-the-fallback")
    monkeypatch.setattr(crypto, "_AESGCM", None)
    monkeypatch.delitem(sys.modules, "cryptography.hazmat.bindings._rust")
    assert crypto.aesgcm() is AESGCM  # the binding's class *is* the public one
    assert crypto.unseal(key, "e" * 64, blob)[1] == "sk-through-the-fallback"


@pytest.mark.parametrize("kind", ["cache", "config", "data"])
def test_paths_fallback_is_platformdirs(kind: str) -> None:
    getter = getattr(platformdirs, f"user_{kind}_dir")
    assert paths._platformdirs(kind) == str(getter("keybroker", appauthor=False))
