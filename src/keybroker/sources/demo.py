"""``demo``: a built-in profile so ``keybroker get demo`` works before anything is configured.

Each fetch mints a random, obviously fake key valid for one hour; it goes through the real
encrypted cache, so ``keybroker print-token demo`` shows a miss and then hits.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from keybroker import clock
from keybroker.model import Request, Secret
from keybroker.sources.base import BaseSource, FetchContext, NoIdentity

LIFETIME = 3600.0


class DemoSource(BaseSource):
    name = "demo"
    default_storage = "disk"

    def describe(self, settings: Mapping[str, Any]) -> str:
        return "built-in demo key (not a real credential)"

    def identity_inputs(self, settings: Mapping[str, Any], env: Mapping[str, str]) -> NoIdentity:
        return NoIdentity("a fake key minted locally: there is no credential to present")

    def fetch(self, request: Request, ctx: FetchContext) -> Secret:
        value = "kb-demo-" + secrets.token_hex(16)
        return Secret(value, expires_at=clock.now() + LIFETIME, version=None, source=self.name)


SOURCE = DemoSource()
