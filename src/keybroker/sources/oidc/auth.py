"""Client authentication at the token endpoint: a client secret, a signed JWT, or none.

The secret is read from where the config says it lives (an environment variable, a file,
or the OS keychain), never from the config itself or argv. ``private_key_jwt`` signs an
RFC 7523 assertion with a PEM key file using ``cryptography`` (already a core dependency),
so no JWT library is needed at run time.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from keybroker import clock
from keybroker.errors import AccessDenied, KeybrokerError, SecretNotFound, UsageError
from keybroker.sources.base import FetchContext

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 120
METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")


@dataclass
class ClientAuth:
    """What to add to a token request: form fields and headers (both hold secrets)."""

    data: dict[str, str] = field(default_factory=dict, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)


def method_for(settings: Mapping[str, Any]) -> str:
    """The configured method, else the natural one for what is configured."""
    explicit = settings.get("client_auth")
    if explicit:
        return str(explicit)
    if settings.get("private_key_file"):
        return "private_key_jwt"
    if any(
        settings.get(k)
        for k in ("client_secret_env", "client_secret_file", "client_secret_keychain")
    ):
        return "client_secret_basic"
    return "none"


def client_secret(settings: Mapping[str, Any], ctx: FetchContext, where: str) -> str:
    """Read the client secret from its configured place and register it as sensitive."""
    var = settings.get("client_secret_env")
    path = settings.get("client_secret_file")
    keychain = settings.get("client_secret_keychain")
    value: str | None = None
    if var:
        value = ctx.env.get(str(var))
        if not value:
            raise UsageError(
                f"{where}: the client secret variable {var} is not set",
                f"export {var}, or set client_secret_file / client_secret_keychain",
            )
    elif path:
        value = read_file(Path(os.path.expanduser(str(path))), where, "client secret file")
    elif keychain:
        value = _from_keychain(str(keychain), where)
    else:
        raise UsageError(
            f"{where}: this client authenticates with a secret but none is configured",
            "set client_secret_env, client_secret_file or client_secret_keychain",
        )
    return registered(value, ctx, UsageError(f"{where}: the configured client secret is empty"))


def registered(value: str, ctx: FetchContext, empty: KeybrokerError) -> str:
    """A credential as read (a secret, a subject token): stripped, registered as sensitive
    before anything can quote it, and ``empty`` raised when nothing is left."""
    value = value.strip()
    ctx.sensitive(value)
    if not value:
        raise empty
    return value


def read_file(path: Path, where: str, what: str) -> str:
    """A credential file's text (the client secret, a private key, a subject token): exit 5
    when it does not exist, 2 when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretNotFound(f"{where}: {what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: cannot read {what} {path} ({type(exc).__name__})") from None


def _from_keychain(spec: str, where: str) -> str:
    """``service`` or ``service/username`` in the OS keychain."""
    from keybroker.sources.keychain import (  # noqa: PLC0415
        DEFAULT_USERNAME,
        backend,
        load_keyring,
        translate,
    )

    service, _, username = spec.partition("/")
    username = username or DEFAULT_USERNAME
    active = backend(load_keyring())
    try:
        value = active.get_password(service, username)
    except Exception as exc:
        raise translate(exc, f"{where}: client secret") from None
    if value is None:
        raise SecretNotFound(
            f"{where}: no client secret in the keychain for {service}/{username}",
            f"run: keybroker keychain set {service} {username}",
        )
    return str(value)


def client_auth(
    settings: Mapping[str, Any], token_endpoint: str, ctx: FetchContext, where: str
) -> ClientAuth:
    """The fields and headers that authenticate this client at ``token_endpoint``."""
    client_id = str(settings["client_id"])
    method = method_for(settings)
    auth = ClientAuth()
    if method == "none":
        auth.data["client_id"] = client_id
    elif method == "client_secret_post":
        auth.data.update(client_id=client_id, client_secret=client_secret(settings, ctx, where))
    elif method == "client_secret_basic":
        secret = client_secret(settings, ctx, where)
        # RFC 6749 2.3.1: both parts are form-urlencoded before base64.
        pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
        header = "Basic " + base64.b64encode(pair).decode()
        ctx.sensitive(header)
        ctx.sensitive(header.split(" ", 1)[1])
        auth.headers["Authorization"] = header
    elif method == "private_key_jwt":
        assertion = sign_assertion(settings, token_endpoint, where)
        ctx.sensitive(assertion)
        auth.data.update(
            client_id=client_id, client_assertion_type=ASSERTION_TYPE, client_assertion=assertion
        )
    else:  # pragma: no cover - choices are checked by the schema
        raise UsageError(f"{where}: unknown client_auth '{method}'")
    return auth


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_assertion(settings: Mapping[str, Any], audience: str, where: str) -> str:
    """An RFC 7523 client assertion signed with the PEM key in ``private_key_file``."""
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.utils import (  # noqa: PLC0415
        decode_dss_signature,
    )

    path = Path(os.path.expanduser(str(settings["private_key_file"])))
    pem = read_file(path, where, "private key file").encode()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise UsageError(
            f"{where}: {path} is not an unencrypted PEM private key",
            "use an RSA or EC (P-256) key in PEM form without a passphrase",
        ) from None
    client_id = str(settings["client_id"])
    now = int(clock.now())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
    }
    if isinstance(key, rsa.RSAPrivateKey):
        alg = "RS256"
    elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        alg = "ES256"
    else:
        raise UsageError(f"{where}: {path}: only RSA and EC P-256 keys are supported")
    header: dict[str, str] = {"alg": alg, "typ": "JWT"}
    if settings.get("private_key_id"):
        header["kid"] = str(settings["private_key_id"])
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    ).encode()
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return signing_input.decode() + "." + b64url(signature)


def denied_hint(settings: Mapping[str, Any]) -> str:
    """What to check when the provider says invalid_client / unauthorized_client."""
    method = method_for(settings)
    if method == "private_key_jwt":
        what = "that the provider has the public key of private_key_file registered"
    elif method == "none":
        what = "whether the client needs a secret (client_secret_env)"
    else:
        where = (
            settings.get("client_secret_env")
            or settings.get("client_secret_file")
            or settings.get("client_secret_keychain")
        )
        what = f"the client secret in {where}"
    return f"check client_id '{settings.get('client_id')}', {what}, and that the grant is allowed"


def as_denied(error: str, description: str, where: str, hint: str) -> AccessDenied:
    detail = f" ({description})" if description else ""
    return AccessDenied(f"{where}: the provider refused the client: {error}{detail}", hint)
