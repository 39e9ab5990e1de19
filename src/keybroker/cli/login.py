"""``keybroker login PROFILE [--device | --browser]``: a person signs in once (oidc or vault).

Vault profiles with ``auth_method`` oidc, userpass or ldap sign in to Vault itself: the browser
on a loopback callback (oidc), or a password read without echo from the terminal, or one line
of stdin with ``--password-stdin`` (userpass, ldap; never from argv or config). The Vault token
is cached encrypted for the helpers, which never prompt.

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
@click.option(
    "--device",
    "flow",
    flag_value="device",
    help="Sign in with a code on another device (prints a URL and a code).",
)
@click.option(
    "--browser",
    "flow",
    flag_value="browser",
    help="Sign in in a browser on this machine (authorization code + PKCE).",
)
@click.option(
    "--no-open",
    is_flag=True,
    help="With --browser (or a vault oidc login): print the URL instead of opening a browser.",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Vault userpass/ldap: read the password from the first line of stdin.",
)
@config_option
@debug_option
@handles_errors
def login(**params: Any) -> None:
    """Sign in for PROFILE (oidc, or vault with oidc/userpass/ldap) for silent use by helpers."""
    sign_in(**params)  # click names each parameter as sign_in does: one signature, typed there


def sign_in(
    profile: str,
    flow: str | None,
    no_open: bool,
    password_stdin: bool,
    config_path: str | None,
    debug: bool,
) -> None:
    """The login flow of ``keybroker login`` (also run by ``keybroker credential`` when
    Claude Code says a person is there to sign in)."""
    from keybroker import clock  # noqa: PLC0415
    from keybroker.cache.store import CacheAux  # noqa: PLC0415
    from keybroker.cli.common import environment, open_cache, profile_request  # noqa: PLC0415
    from keybroker.deadline import restart_call  # noqa: PLC0415
    from keybroker.errors import UsageError  # noqa: PLC0415
    from keybroker.model import Deadline  # noqa: PLC0415
    from keybroker.sources.base import FetchContext  # noqa: PLC0415
    from keybroker.sources.oidc import DEFAULT_GRANT, LOGIN_GRANTS, SOURCE  # noqa: PLC0415
    from keybroker.sources.oidc.flows import login as run_flow  # noqa: PLC0415
    from keybroker.sources.oidc.tokens import to_secret  # noqa: PLC0415

    env = environment(config_path)
    cache, cache_error = open_cache(env)
    request = profile_request(env, profile, cache)
    if request.source == "vault":
        if flow is not None:
            raise UsageError(
                f"--{flow} is for oidc-source profiles; a vault profile signs in "
                "with its auth_method",
                f"run: keybroker login {profile}",
            )
        _vault_login(request, env, cache, cache_error, no_open, password_stdin, debug)
        return
    if request.source != "oidc":
        raise UsageError(
            f"profile '{profile}' uses source '{request.source}'; only oidc and vault "
            "profiles sign in",
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
    chosen = (
        flow
        or request.settings.get("login")
        or ("browser" if grant == "authorization_code" else "device")
    )
    ui = Terminal()
    ctx = FetchContext(
        Deadline(LOGIN_TIMEOUT),
        env,
        CacheAux(cache, "oidc") if cache is not None else None,
        debug=debug,
        interactive=True,
        progress=ui.say,
    )
    received_at = clock.now()
    body = run_flow(request, ctx, chosen, ui, open_browser=not no_open)
    restart_call()  # the person took their time: what follows gets a whole budget again
    which = str(request.settings.get("token") or "access_token")
    secret = to_secret(body, which, grant, request.where(), received_at)
    _prime_cache(request, env, cache, secret, SOURCE)
    who = _who(body)
    ui.say(f"keybroker: signed in{who}; 'keybroker get {profile}' now works without prompting")


def _vault_login(
    request: Any,
    env: Any,
    cache: Any,
    cache_error: Any,
    no_open: bool,
    password_stdin: bool,
    debug: bool,
) -> None:
    """Sign in to Vault as a person, cache the token, then read the key once (and cache it)."""
    from keybroker.cache.store import CacheAux  # noqa: PLC0415
    from keybroker.deadline import restart_call  # noqa: PLC0415
    from keybroker.errors import KeybrokerError, UsageError  # noqa: PLC0415
    from keybroker.model import Deadline  # noqa: PLC0415
    from keybroker.resolve import resolve  # noqa: PLC0415
    from keybroker.sources.base import FetchContext  # noqa: PLC0415
    from keybroker.sources.vault import HUMAN_METHODS, build_spec  # noqa: PLC0415
    from keybroker.sources.vault.client import load_hvac  # noqa: PLC0415

    profile = request.profile
    spec = build_spec(request.settings, env, profile)
    if not spec.human:
        raise UsageError(
            f"profile '{profile}' logs in to Vault with auth_method \"{spec.auth_method}\", "
            "which needs no person",
            f"run: keybroker get {profile} (keybroker login is for {', '.join(HUMAN_METHODS)})",
        )
    if cache is None:
        raise cache_error  # the login is kept in the encrypted cache: without one it is lost
    load_hvac()
    ui = Terminal()
    ctx = FetchContext(
        Deadline(LOGIN_TIMEOUT),
        env,
        CacheAux(cache, "vault"),
        debug=debug,
        interactive=True,
        progress=ui.say,
    )
    from keybroker.sources.vault.login import sign_in  # noqa: PLC0415

    sign_in(
        spec,
        request.settings,
        ctx,
        ui,
        lambda: _read_password(spec, password_stdin),
        open_browser=not no_open,
    )
    # The sign-in waited for the person (a browser, a password prompt); the read that follows
    # gets a whole KEYBROKER_TIMEOUT of its own, not what is left of it since the start.
    restart_call()
    who = f" as {spec.username}" if spec.username else ""
    try:
        resolve(request, env, cache=cache)
    except KeybrokerError as exc:
        ui.say(
            f"keybroker: signed in to {spec.addr}{who} ({spec.auth_method}), but the key "
            "could not be read:"
        )
        raise exc from None
    ui.say(
        f"keybroker: signed in to {spec.addr}{who} ({spec.auth_method}); "
        f"'keybroker get {profile}' now works without prompting"
    )


#: A password longer than this on stdin is a mistake (a file piped in by accident).
MAX_PASSWORD = 4096


def _read_password(spec: Any, from_stdin: bool) -> str:
    """One line of stdin (``--password-stdin``), or a no-echo prompt on the terminal."""
    from keybroker.errors import UsageError  # noqa: PLC0415

    if from_stdin:
        line = sys.stdin.readline(MAX_PASSWORD + 1)
        if len(line) > MAX_PASSWORD:
            raise UsageError("--password-stdin: the first line of stdin is too long for a password")
        return line.rstrip("\r\n")
    import getpass  # noqa: PLC0415
    import os  # noqa: PLC0415

    try:
        os.close(
            os.open(
                "/dev/tty" if sys.platform != "win32" else "CONIN$",
                os.O_RDWR | getattr(os, "O_NOCTTY", 0),
            )
        )
    except OSError:
        raise UsageError(
            f"{spec.label}: no terminal to ask {spec.username}'s password on",
            "pipe it in with --password-stdin (never put it in argv or the config)",
        ) from None
    return getpass.getpass(f"Password for {spec.username} ({spec.auth_method} at {spec.addr}): ")


def _who(body: dict[str, Any]) -> str:
    """``as NAME`` from the ID token's claims, when there is one (claims are not secrets)."""
    from keybroker.sources.oidc.tokens import jwt_claims  # noqa: PLC0415

    token = body.get("id_token")
    claims = jwt_claims(token) if isinstance(token, str) else None
    if not claims:
        return ""
    name = claims.get("email") or claims.get("preferred_username") or claims.get("sub")
    return f" as {name}" if isinstance(name, str) and name.isprintable() else ""


def _prime_cache(request: Any, env: Any, cache: Any, secret: Any, source: Any) -> None:
    """Put the new token in the profile's cache entry (replacing a previous user's token)."""
    from keybroker import clock  # noqa: PLC0415
    from keybroker.cache.entry import Entry  # noqa: PLC0415
    from keybroker.model import Deadline  # noqa: PLC0415
    from keybroker.redact import sensitive  # noqa: PLC0415
    from keybroker.resolve import entry_name  # noqa: PLC0415
    from keybroker.validate import validate_key  # noqa: PLC0415

    if cache is None:
        return
    eid = entry_name(cache, request.source, request.settings, env)
    sensitive(secret.value)
    if request.options.storage != "disk":
        cache.remove(eid)
        return
    validate_key(secret.value, f"{request.where()} (oidc)")
    label = source.describe(request.settings)
    with cache.lock(eid, Deadline(request.options.timeout)):
        cache.write(
            Entry(
                id=eid,
                value=secret.value,
                fetched_at=clock.now(),
                expires_at=secret.expires_at,
                version=None,
                source=request.source,
                label=f"{request.source}:{label}",
                meta=dict(secret.metadata),
            )
        )
