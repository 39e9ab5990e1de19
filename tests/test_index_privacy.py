"""The hit path's index holds names, settings and fingerprints, never a credential value.

Issue 20 item 14: a source's ``canonical()`` may read ``VAULT_TOKEN`` (to tell which auth
method applies), and the index kept the value of every variable read, per environment
variant — encrypted, but docs/cache.md promises the index never holds values.
"""

from __future__ import annotations

import base64
import marshal
import urllib.parse

from keybroker import paths
from keybroker.cache.index import read_index
from keybroker.cache.store import Cache
from tests.conftest import KbEnv
from tests.fixtures.openbao import OpenBao
from tests.kb import run


def index_plaintext(env: KbEnv) -> bytes:
    cache = Cache.open(env)
    data = read_index(
        str(cache.root), str(env.config_path), cache.key(), paths.system_config_str(env)
    )
    assert data is not None, "no current index"
    return marshal.dumps(data)


def forms(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, base64.b64encode(raw), urllib.parse.quote(secret).encode(), raw.hex().encode()]


def test_the_index_keeps_no_token_of_any_environment_variant(
    kb_env: KbEnv, openbao: OpenBao
) -> None:
    openbao.kv_put("privacy", {"key": "sk-privacy-0123456789"})
    kb_env.write_config('[profiles.v]\nsource = "vault"\npath = "privacy"\nfield = "key"\n')
    kb_env.update(VAULT_ADDR=openbao.addr)
    tokens: list[str] = []
    for n in range(3):  # three callers with their own tokens: three variants
        other = openbao.api("POST", "auth/token/create", {"policies": ["root"], "ttl": "1h"})
        token = other["auth"]["client_token"]
        tokens.append(token)
        result = run(["keybroker", "get", "v"], dict(kb_env, VAULT_TOKEN=token))
        assert result.code == 0, (n, result)
        assert run(["keybroker", "get", "v"], dict(kb_env, VAULT_TOKEN=token)).code == 0
    plain = index_plaintext(kb_env)
    assert b"VAULT_TOKEN" in plain or b"VAULT_ADDR" in plain  # names, yes
    for token in tokens:
        for form in forms(token):
            assert form not in plain, "a token value is in the index"
