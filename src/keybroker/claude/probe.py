"""``doctor --probe-gateway URL``: does the gateway answer a bad key with 401?

Claude Code re-runs apiKeyHelper only after a 401. A LiteLLM proxy without its database
answers any key but the master key with 400 "No connected db.", so a rotated or revoked key
is never refreshed through the 401 path: the session keeps failing until the TTL. The probe
sends a deliberately invalid key (never a real one) and reports what came back.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from keybroker.sources.base import Check

#: Obviously not a key: nothing real is ever sent by the probe.
PROBE_KEY = "sk-keybroker-doctor-probe-invalid-key"
PATHS = {
    "anthropic": "/v1/messages",
    "bedrock": "/model/keybroker-probe/invoke",
    "vertex": "/projects/keybroker-probe/locations/us-east5/publishers/anthropic/models/"
    "keybroker-probe:rawPredict",
}


def probe_gateway(url: str, deployment: str = "anthropic", timeout: float = 10.0) -> Check:
    """POST a minimal request with :data:`PROBE_KEY` and judge the status code."""
    label = "gateway bad-key answer"
    target = url.rstrip("/") + PATHS[deployment]
    body = json.dumps(
        {
            "model": "keybroker-probe",
            "max_tokens": 1,
            "messages": [{"role": "user", "content": "probe"}],
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {PROBE_KEY}",
        "anthropic-version": "2023-06-01",
    }
    if deployment == "anthropic":
        headers["x-api-key"] = PROBE_KEY
    if not target.startswith(("http://", "https://")):
        return Check(False, label, f"{url!r} is not an http(s) URL", "pass the gateway's URL")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked just above
        target, data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, text = response.status, response.read(4096).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read(4096).decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check(
            False,
            label,
            f"{target}: cannot connect ({reason})",
            "check the URL (the gateway's base URL for this deployment)",
        )
    if status == 401:
        return Check(
            True,
            label,
            f"{target} answers an invalid key with 401: Claude Code "
            "re-runs apiKeyHelper and recovers from a rotated key",
        )
    if status == 400 and "No connected db" in text:
        return Check(
            False,
            label,
            f'{target} answers an invalid key with 400 "No connected db.": a '
            "LiteLLM proxy without its database accepts only the master key and says "
            "400, not 401, so Claude Code never re-runs apiKeyHelper and a rotated "
            "key fails until the TTL",
            "connect LiteLLM to its database (DATABASE_URL) so virtual keys work and "
            "bad keys get 401, or lower the TTL (keybroker claude configure --ttl)",
        )
    return Check(
        False,
        label,
        f"{target} answers an invalid key with {status}, not 401: Claude Code re-runs "
        "apiKeyHelper only after a 401, so a rotated key fails until the TTL",
        "make the gateway answer 401 for an unknown key, or lower the TTL",
    )
