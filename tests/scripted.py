"""A source for in-process tests of the cache rules: it answers what the test scripts.

It stands in for the upstream only; the cache, the freshness rules and resolve — the things
under test — are the real ones. Registered under the name ``scripted``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from keybroker import clock
from keybroker.model import Request, Secret
from keybroker.sources import base
from keybroker.sources.base import BaseSource, FetchContext, NoIdentity, Setting


class ScriptedSource(BaseSource):
    name = "scripted"
    default_storage = "disk"
    settings = (Setting("id", help="which scripted key", required=True),)

    def __init__(self) -> None:
        self.fetches = 0
        self.revalidations = 0
        self.lifetime: float | None = 3600.0
        self.error: Exception | None = None
        self.value_fn: Callable[[int], str] = lambda n: f"sk-scripted-{n:04d}"
        self.version_fn: Callable[[int], str | None] = lambda n: None
        self.revalidate_answer: bool | None = None

    def describe(self, settings: Mapping[str, Any]) -> str:
        return f"scripted/{settings.get('id')}"

    def identity_inputs(self, settings: Mapping[str, Any], env: Mapping[str, str]) -> NoIdentity:
        return NoIdentity("the scripted upstream presents no credential")

    def fetch(self, request: Request, ctx: FetchContext) -> Secret:
        if self.error is not None:
            raise self.error
        self.fetches += 1
        expires = None if self.lifetime is None else clock.now() + self.lifetime
        return Secret(
            self.value_fn(self.fetches), expires, self.version_fn(self.fetches), self.name
        )

    def revalidate(self, request: Request, version: str | None, ctx: FetchContext) -> bool | None:
        self.revalidations += 1
        return self.revalidate_answer


def install() -> ScriptedSource:
    source = ScriptedSource()
    base.register(source)
    return source


def uninstall() -> None:
    base.unregister("scripted")


class Clock:
    """A wall clock a test moves by hand (patched over ``keybroker.clock.now``)."""

    def __init__(self, start: float) -> None:
        self.t = start

    def now(self) -> float:
        return self.t
