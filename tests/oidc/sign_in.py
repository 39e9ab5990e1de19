"""Play the person at the browser: open URL, then submit the provider's forms as a user would.

Usage: python sign_in.py URL [LOGIN]

Used by the oidc tests two ways: with a device flow's ``verification_uri_complete`` (enter
code → confirm → devInteractions login → consent), and as ``BROWSER`` for ``keybroker login
--browser`` (login → consent → redirect to keybroker's loopback port). Each page's first form
is posted with its own fields plus the login name and a password; it stops at a page
without a form (the provider's success page, or keybroker's loopback answer).
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests

MAX_PAGES = 12


class FirstForm(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method = "get"
        self.fields: dict[str, str] = {}
        self.inside = False
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.done and self.action is None:
            self.action = a.get("action", "")
            self.method = a.get("method", "get").lower()
            self.inside = True
        elif tag == "input" and self.inside and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.inside:
            self.inside = False
            self.done = True


def sign_in(url: str, login: str = "alice") -> str:
    session = requests.Session()
    response = session.get(url, timeout=60)
    for _ in range(MAX_PAGES):
        form = FirstForm()
        form.feed(response.text)
        if form.action is None:
            response.raise_for_status()
            return response.text
        fields = dict(form.fields)
        if "login" in fields:
            fields["login"] = login
        if "password" in fields:
            fields["password"] = "any-password"  # devInteractions accepts any
        target = urljoin(response.url, form.action)
        if form.method == "post":
            response = session.post(target, data=fields, timeout=60)
        else:
            response = session.get(target, params=fields, timeout=60)
    raise RuntimeError(f"still at a form after {MAX_PAGES} pages: {response.url}")


if __name__ == "__main__":
    page = sign_in(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "alice")
    sys.stderr.write("sign_in: finished at a page without a form\n")
    sys.exit(0)
