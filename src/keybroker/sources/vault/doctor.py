"""``keybroker doctor`` for vault profiles: address, seal, token (and its TTL), the read."""

from __future__ import annotations

from collections.abc import Callable

from keybroker.durations import format_duration
from keybroker.errors import AccessDenied, KeybrokerError, Unreachable
from keybroker.sources.base import Check
from keybroker.sources.vault.auth import Login, Session
from keybroker.sources.vault.client import translate
from keybroker.sources.vault.spec import Read, Spec


def checks(session: Session, read_check: Callable[[Spec, Read], Check]) -> list[Check]:
    """Address reachable, sealed or not, token valid and its TTL, read allowed."""
    spec = session.spec
    checks: list[Check] = []
    try:
        health = session.client.sys.read_health_status(
            method="GET",
            standby_ok=True,
            sealed_code=200,
            uninit_code=200,
            performance_standby_code=200,
            dr_secondary_code=200,
        )
        if not isinstance(health, dict):
            raise ValueError("not JSON")
    except Exception as exc:
        error = translate(exc, spec, session.ctx, doing="checking sys/health")
        if not isinstance(error, Unreachable) or "unexpected answer" in error.message:
            try:  # an answer, but not Vault's: name that, not the path
                session.check_is_vault()
            except KeybrokerError as not_vault:
                error = not_vault
        checks.append(Check(False, "address", f"{spec.addr}: {error.message}", error.hint or ""))
        return checks
    checks.append(
        Check(True, "address", f"{spec.addr} reachable (version {health.get('version', '?')})")
    )
    if spec.verify is False and spec.addr.startswith("https://"):
        checks.append(
            Check(
                True,
                "tls",
                "certificate verification is OFF (tls_verify = "
                "false or VAULT_SKIP_VERIFY): prefer ca_cert with the server's "
                "CA bundle",
            )
        )
    if health.get("sealed") or not health.get("initialized", True):
        checks.append(
            Check(
                False,
                "seal",
                "sealed" if health.get("sealed") else "not initialized",
                "unseal the server (or use another node)",
            )
        )
        return checks
    checks.append(Check(True, "seal", "unsealed"))
    try:
        login = session.authenticate()
        token_check = _token_check(session, login)
    except KeybrokerError as exc:
        checks.append(Check(False, "token", exc.message, exc.hint or ""))
        return checks
    try:
        read = session.read()
    except KeybrokerError as exc:
        if token_check is None:
            token_check = Check(
                False,
                "token",
                f"{login.origin}: refused by the server",
                "log in again (vault login) or check the credentials",
            )
        checks.append(token_check)
        checks.append(Check(False, "read", exc.message, exc.hint or ""))
        return checks
    if token_check is None:
        origin = session.login.origin if session.login else login.origin
        token_check = Check(
            True,
            "token",
            f"accepted ({origin}; TTL unknown: its policies "
            "do not let it look itself up, e.g. no 'default' policy)",
        )
    checks.append(token_check)
    checks.append(read_check(spec, read))
    return checks


def _token_check(session: Session, login: Login) -> Check | None:
    """Valid and its TTL; None when the token may not look itself up (decided by the read)."""
    if not login.token:
        return Check(
            True,
            "token",
            "none sent (Vault Agent/Proxy listener mode): "
            "the read below shows whether the listener adds one",
        )
    try:
        info = session.client.auth.token.lookup_self()["data"]
    except Exception as exc:
        error = translate(exc, session.spec, session.ctx, doing="looking up the token")
        if isinstance(error, AccessDenied):
            return None
        return Check(False, "token", f"{login.origin}: {error.message}", error.hint or "")
    ttl = int(info.get("ttl") or 0)
    policies = ", ".join(sorted(str(p) for p in info.get("policies") or [])) or "none"
    life = "no expiry" if ttl == 0 else f"TTL {format_duration(ttl)}"
    renew = ", renewable" if info.get("renewable") else ""
    return Check(True, "token", f"valid ({login.origin}; {life}{renew}; policies: {policies})")
