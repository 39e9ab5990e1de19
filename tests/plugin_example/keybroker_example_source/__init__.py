"""``jsonfile``: a key from a JSON document of name → key (an example third-party source).

Written only against :mod:`keybroker.sources.api`, as docs/sources/writing-a-source.md shows:
it imports nothing heavy, its ``canonical()`` is pure, it names its credentials' place in
``identity_inputs()`` and raises keybroker's errors with their exit codes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from keybroker.sources.api import (
    BaseSource,
    FetchContext,
    InvalidSecret,
    Request,
    Secret,
    SecretNotFound,
    Setting,
    Unreachable,
)


def _path(settings: Mapping[str, Any]) -> str:
    return os.path.abspath(os.path.expanduser(str(settings["path"])))


class JsonFileSource(BaseSource):
    name = "jsonfile"
    default_storage = "disk"
    settings = (
        Setting("path", help="JSON file holding an object of name -> key", required=True),
        Setting("key", help="which name to print", required=True),
    )

    def canonical(self, settings: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
        return {"path": _path(settings), "key": str(settings["key"])}

    def identity_inputs(
        self, settings: Mapping[str, Any], env: Mapping[str, str]
    ) -> list[tuple[str, str]]:
        return [("file", _path(settings))]  # whoever can read the file holds the keys

    def describe(self, settings: Mapping[str, Any]) -> str:
        return f"{settings.get('path')}#{settings.get('key')}"

    def fetch(self, request: Request, ctx: FetchContext) -> Secret:
        path = _path(request.settings)
        name = str(request.settings["key"])
        try:
            with open(path, encoding="utf-8") as handle:
                doc = json.load(handle)
        except FileNotFoundError:
            raise SecretNotFound(f"{request.where()}: {path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise Unreachable(
                f"{request.where()}: cannot read {path} ({type(exc).__name__})"
            ) from None
        if not isinstance(doc, dict) or name not in doc:
            raise SecretNotFound(f"{request.where()}: no key named {name!r} in {path}")
        value = doc[name]
        if not isinstance(value, str):
            raise InvalidSecret(f"{request.where()}: {name!r} in {path} is not a string")
        ctx.sensitive(value)
        return Secret(value, source=self.name)


SOURCE = JsonFileSource()
