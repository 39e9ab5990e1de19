"""``env``: the key is in an environment variable (tests, CI, static keys).

Reading the environment is cheaper than the cache, so the default storage is ``none``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keybroker.errors import SecretNotFound
from keybroker.model import Request, Secret
from keybroker.sources.base import BaseSource, FetchContext, Setting


class EnvSource(BaseSource):
    name = "env"
    default_storage = "none"
    settings = (Setting("var", help="environment variable that holds the key", required=True),)

    def describe(self, settings: Mapping[str, Any]) -> str:
        return f"${settings.get('var')}"

    def identity_inputs(
        self, settings: Mapping[str, Any], env: Mapping[str, str]
    ) -> list[tuple[str, str]]:
        # With storage = "disk" a caller whose variable holds another value must not get
        # the cached one: the value is the credential.
        return [("env", str(settings["var"]))]

    def direct_read(self, settings: Mapping[str, Any]) -> tuple[str, str] | None:
        return ("env", str(settings["var"]))

    def fetch(self, request: Request, ctx: FetchContext) -> Secret:
        var = str(request.settings["var"])
        value = ctx.env.get(var)
        if value is None:
            raise SecretNotFound(
                f"{request.where()}: environment variable {var} is not set",
                f"export {var} before running keybroker, or fix the profile's 'var'",
            )
        return Secret(value.strip(), source=self.name)


SOURCE = EnvSource()
