"""``keybroker login PROFILE [--device | --browser]``: a person signs in once for an oidc profile.

The only command that may prompt: it prints the verification URL and code (device flow) or
opens the browser on a loopback redirect (authorization code + PKCE), shows a live waiting
indicator on stderr, and stores the refresh token encrypted (or in the keychain). The fresh
token goes into the profile's cache entry, so the next ``keybroker get`` is served at once and
later ones refresh silently. Nothing is printed on stdout.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from keybroker.cli.errors import config_option, debug_option, handles_errors

#: A person gets this long to sign in (device codes usually live 5-15 minutes).
LOGIN_TIMEOUT = 900.0
SPINNER = "|/-\\"
#: Lines here carry URLs a person must copy whole; only an absurd one is cut.
LINE_LIMIT = 16384


class Terminal:
    """Lines and a live waiting indicator on stderr, scrubbed and neutralised like every
    diagnostic: the lines quote what the provider sent (``verification_uri``, ``user_code``),
    and an escape sequence in them must not reach the terminal raw.

    On a terminal the indicator redraws one line (spinner and elapsed time); elsewhere (a log,
    a test) it prints the message once and then a dot per second, then a newline.
    """

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.active = False
        self.ticks = 0
        self.dots = 0

    def _write(self, text: str) -> None:
        from keybroker.redact import scrub  # noqa: PLC0415

        try:
            self.stream.write(scrub(text))
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def say(self, line: str) -> None:
        from keybroker.redact import neutralise, scrub  # noqa: PLC0415

        self.done()
        self._write(neutralise(scrub(line), limit=LINE_LIMIT) + "\n")

    def waiting(self, what: str, elapsed: float) -> None:
        from keybroker.redact import neutralise  # noqa: PLC0415

        what = neutralise(what)
        if self.tty:
            self.ticks += 1
            spin = SPINNER[self.ticks % len(SPINNER)]
            self._write(f"\r{spin} {what}… {int(elapsed)}s ")
            self.active = True
            return
        if not self.active:
            self._write(f"keybroker: {what}")
            self.active = True
        while self.dots < int(elapsed):
            self._write(".")
            self.dots += 1

    def done(self) -> None:
        if self.active:
            self._write("\r\033[K" if self.tty else "\n")
        self.active = False
        self.dots = 0


@click.command("login")
@click.argument("profile")
@click.option("--device", "flow", flag_value="device",
              help="Sign in with a code on another device (prints a URL and a code).")
@click.option("--browser", "flow", flag_value="browser",
              help="Sign in in a browser on this machine (authorization code + PKCE).")
@click.option("--no-open", is_flag=True,
              help="With --browser: print the URL instead of opening a browser.")
@config_option
@debug_option
@handles_errors
def login(
    profile: str, flow: str | None, no_open: bool, config_path: str | None, debug: bool
) -> None:
    """Sign in for oidc PROFILE and store its refresh token for silent use by helpers."""
    from keybroker import clock  # noqa: PLC0415
    from keybroker.cache.store import CacheAux  # noqa: PLC0415
    from keybroker.cli.common import environment, open_cache, profile_request  # noqa: PLC0415
    from keybroker.errors import UsageError  # noqa: PLC0415
    from keybroker.model import Deadline  # noqa: PLC0415
    from keybroker.sources.base import FetchContext  # noqa: PLC0415
    from keybroker.sources.oidc import DEFAULT_GRANT, LOGIN_GRANTS, SOURCE  # noqa: PLC0415
    from keybroker.sources.oidc_flows import login as run_flow  # noqa: PLC0415
    from keybroker.sources.oidc_tokens import to_secret  # noqa: PLC0415

    env = environment(config_path)
    cache, cache_error = open_cache(env)
    request = profile_request(env, profile, cache)
    if request.source != "oidc":
        raise UsageError(
            f"profile '{profile}' uses source '{request.source}'; only oidc profiles sign in",
            f"run: keybroker get {profile}",
        )
    grant = request.settings.get("grant") or DEFAULT_GRANT
    if grant not in LOGIN_GRANTS:
        raise UsageError(
            f"profile '{profile}' uses grant '{grant}', which needs no login",
            f"run: keybroker get {profile}",
        )
    store_kind = request.settings.get("refresh_token_store") or "cache"
    if cache is None and store_kind == "cache":
        assert cache_error is not None
        raise cache_error
    chosen = flow or request.settings.get("login") or (
        "browser" if grant == "authorization_code" else "device"
    )
    ui = Terminal()
    ctx = FetchContext(
        Deadline(LOGIN_TIMEOUT), env,
        CacheAux(cache, "oidc") if cache is not None else None,
        debug=debug, interactive=True, progress=ui.say,
    )
    received_at = clock.now()
    body = run_flow(request, ctx, chosen, ui, open_browser=not no_open)
    which = str(request.settings.get("token") or "access_token")
    secret = to_secret(body, which, grant, request.where(), received_at)
    _prime_cache(request, env, cache, secret, SOURCE)
    who = _who(body)
    ui.say(f"keybroker: signed in{who}; 'keybroker get {profile}' now works without prompting")


def _who(body: dict[str, Any]) -> str:
    """``as NAME`` from the ID token's claims, when there is one (claims are not secrets)."""
    from keybroker.sources.oidc_tokens import jwt_claims  # noqa: PLC0415

    token = body.get("id_token")
    claims = jwt_claims(token) if isinstance(token, str) else None
    if not claims:
        return ""
    name = claims.get("email") or claims.get("preferred_username") or claims.get("sub")
    return f" as {name}" if isinstance(name, str) and name.isprintable() else ""


def _prime_cache(request: Any, env: Any, cache: Any, secret: Any, source: Any) -> None:
    """Put the new token in the profile's cache entry (replacing a previous user's token)."""
    from keybroker import clock  # noqa: PLC0415
    from keybroker.cache.store import Entry, entry_id  # noqa: PLC0415
    from keybroker.model import Deadline  # noqa: PLC0415
    from keybroker.redact import sensitive  # noqa: PLC0415
    from keybroker.validate import validate_key  # noqa: PLC0415

    if cache is None:
        return
    eid = entry_id(request.source, source.canonical(request.settings, env))
    sensitive(secret.value)
    if request.options.storage != "disk":
        cache.remove(eid)
        return
    validate_key(secret.value, f"{request.where()} (oidc)")
    label = source.describe(request.settings)
    with cache.lock(eid, Deadline(request.options.timeout)):
        cache.write(Entry(
            id=eid, value=secret.value, fetched_at=clock.now(), expires_at=secret.expires_at,
            version=None, source=request.source, label=f"{request.source}:{label}",
            meta=dict(secret.metadata),
        ))
