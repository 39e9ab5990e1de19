"""``file``: the key is the content of a file (a mounted Kubernetes secret, a CI file variable).

Leading/trailing whitespace (the usual final newline) is dropped; anything else inside the
value makes it invalid. Default storage is ``none``: the file is as fast as the cache.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keybroker.errors import AccessDenied, InvalidSecret, SecretNotFound, Unreachable
from keybroker.model import Request, Secret
from keybroker.sources.base import BaseSource, FetchContext, Setting

_LIMIT = 1 << 20


class FileSource(BaseSource):
    name = "file"
    default_storage = "none"
    settings = (Setting("path", help="file that holds the key", required=True),)

    def canonical(self, settings: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
        return {"path": os.path.abspath(os.path.expanduser(str(settings["path"])))}

    def describe(self, settings: Mapping[str, Any]) -> str:
        return str(settings.get("path"))

    def identity_inputs(
        self, settings: Mapping[str, Any], env: Mapping[str, str]
    ) -> list[tuple[str, str]]:
        return [("file", os.path.abspath(os.path.expanduser(str(settings["path"]))))]

    def direct_read(self, settings: Mapping[str, Any]) -> tuple[str, str] | None:
        return ("file", os.path.abspath(os.path.expanduser(str(settings["path"]))))

    def fetch(self, request: Request, ctx: FetchContext) -> Secret:
        path = Path(os.path.expanduser(str(request.settings["path"])))
        try:
            with path.open("rb") as handle:
                raw = handle.read(_LIMIT + 1)
        except FileNotFoundError:
            raise SecretNotFound(
                f"{request.where()}: file {path} does not exist", "fix the profile's 'path'"
            ) from None
        except PermissionError:
            raise AccessDenied(f"{request.where()}: permission denied reading {path}") from None
        except IsADirectoryError:
            raise SecretNotFound(f"{request.where()}: {path} is a directory, not a file") from None
        except OSError as exc:
            raise Unreachable(f"{request.where()}: cannot read {path}: {exc.strerror}") from None
        if len(raw) > _LIMIT:
            raise InvalidSecret(f"{request.where()}: {path} is larger than 1 MiB; not a key")
        try:
            value = raw.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidSecret(
                f"{request.where()}: {path} contains non-ASCII bytes",
                "a key must be one token of printable ASCII",
            ) from None
        return Secret(value.strip(), source=self.name)


SOURCE = FileSource()
