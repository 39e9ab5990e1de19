"""The same managed settings as a macOS device-management profile (``.mobileconfig``).

On a Mac fleet managed settings usually arrive through MDM: the profile's custom-settings
payload for the preference domain ``com.anthropic.claudecode`` lands in
``/Library/Managed Preferences/com.anthropic.claudecode.plist``, which Claude Code reads
(2.1.337: ``/Library/Managed Preferences/[<user>/]com.anthropic.claudecode.plist``) with the
settings keys (``apiKeyHelper``, ``env``, …) at its top level. So the profile is one
``Configuration`` with one payload of ``PayloadType`` ``com.anthropic.claudecode`` holding the
settings keys beside the payload's own ``Payload*`` keys. Jamf Pro and Intune both upload it
as a custom configuration profile.
"""

from __future__ import annotations

import plistlib
import uuid
from collections.abc import Mapping
from typing import Any

DOMAIN = "com.anthropic.claudecode"
#: A fixed namespace, so regenerating the profile for the same identifier keeps its UUIDs and
#: an MDM replaces the installed profile instead of adding a second one.
_NAMESPACE = uuid.UUID("6f1b2c1e-6b0a-4e3f-9d0c-6b65796272c0")


def profile(settings: Mapping[str, Any], identifier: str, organization: str | None) -> bytes:
    """The ``.mobileconfig`` (XML plist) carrying ``settings`` for Claude Code."""
    inner: dict[str, Any] = {
        "PayloadType": DOMAIN,
        "PayloadIdentifier": f"{identifier}.{DOMAIN}",
        "PayloadUUID": str(uuid.uuid5(_NAMESPACE, f"{identifier}/payload")).upper(),
        "PayloadVersion": 1,
        "PayloadDisplayName": "Claude Code: keybroker apiKeyHelper",
        "PayloadEnabled": True,
    }
    inner.update(settings)
    outer: dict[str, Any] = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": str(uuid.uuid5(_NAMESPACE, identifier)).upper(),
        "PayloadDisplayName": "Claude Code managed settings (keybroker)",
        "PayloadDescription": "Runs keybroker as Claude Code's apiKeyHelper for every user.",
        "PayloadScope": "System",
        "PayloadRemovalDisallowed": True,
        "PayloadContent": [inner],
    }
    if organization:
        outer["PayloadOrganization"] = organization
    return plistlib.dumps(outer, fmt=plistlib.FMT_XML, sort_keys=True)
