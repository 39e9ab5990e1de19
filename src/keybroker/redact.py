"""The last line of defence for stderr: every known secret is replaced before a byte is written.

Sources register each value they obtain (the key, login tokens, refresh tokens, client
secrets) with :func:`sensitive`; :func:`emit` is the only way keybroker writes diagnostics, so
even a message built carelessly from a library's exception text (or a ``--debug`` traceback)
cannot carry a registered secret to stderr.
"""

from __future__ import annotations

import sys

_SECRETS: set[str] = set()
_MIN_LENGTH = 4
#: In text a third party wrote (a provider's error_description, a command's stderr, an AWS
#: error), a run this long of token characters is taken for a credential: it may be one
#: keybroker never saw (a signed request, another token), or an encoding of one it did.
_OPAQUE = r"[A-Za-z0-9+/=_.~%-]{24,}"


def derived_forms(value: str) -> list[str]:
    """The value and the encodings of it a tool may log or echo back, value first.

    JSON-escaped, URL-encoded (``quote`` and ``quote_plus``, as in a form body), base64
    standard and URL-safe, each with and without padding. Masking (GitHub's, ``exec
    --mask``) and scrubbing match exact substrings only, so each form is matched on its own.
    """
    import base64  # noqa: PLC0415 - redact is imported by every command; keep it light
    import json  # noqa: PLC0415
    import urllib.parse  # noqa: PLC0415

    raw = value.encode()
    forms = [value]
    candidates = [
        json.dumps(value)[1:-1],
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value, safe=""),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]
    for form in candidates:
        if form and form not in forms:
            forms.append(form)
    return forms


#: A value guessable in fewer tries than this (in bits) hides nothing and is not registered:
#: Vault's dev-mode token "root" would otherwise turn every "root" — the policy, a path —
#: into "***", while anyone can guess it anyway.
_MIN_BITS = 24.0


def strength(value: str) -> float:
    """A rough upper bound of the bits needed to guess ``value``: its length times log2 of
    the alphabet its character classes span (lower, upper, digits, other)."""
    import math  # noqa: PLC0415

    alphabet = (
        26 * any(c.islower() for c in value)
        + 26 * any(c.isupper() for c in value)
        + 10 * any(c.isdigit() for c in value)
        + 33 * any(not c.isalnum() for c in value)
    )
    return len(value) * math.log2(max(alphabet, 2))


def sensitive(value: str | None) -> None:
    """Remember ``value`` and its :func:`derived_forms` so :func:`scrub` removes them.

    Values too weak to be a secret worth hiding (under :data:`_MIN_BITS`, such as a dev
    server's ``root`` token) are not registered: masking every occurrence of a common word
    hides the text around it (policies, paths) and protects nothing.
    """
    if value and len(value) >= _MIN_LENGTH and strength(value) >= _MIN_BITS:
        _SECRETS.update(derived_forms(value))


def scrub(text: str) -> str:
    """Replace every registered secret in ``text`` with ``***`` (longest first)."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


def scrub_quoted(text: str) -> str:
    """Third-party text made fit to quote: registered secrets, then any long opaque run, out.

    For messages that quote what a server or a command said (never for keybroker's own
    text, whose URLs and paths must stay readable).
    """
    import re  # noqa: PLC0415

    return re.sub(_OPAQUE, "***", scrub(text))


#: Words after which the next word is a credential, whatever it looks like.
_CREDENTIAL_WORDS = (
    "password",
    "passwd",
    "pass",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "key",
    "apikey",
    "api_key",
    "api-key",
    "auth",
    "authorization",
    "bearer",
    "basic",
    "credential",
    "credentials",
    "pin",
    "otp",
)
#: A run of token characters, and what keeps it apart from the next word.
_WORD = r"[A-Za-z0-9+/=_.~%:@-]+"


def mask_words(text: str) -> str:
    """Third-party text with every token-like word masked, *whatever its length*.

    For what a command or tool wrote itself (a failing command's stderr), which keybroker
    never saw the secrets of: :func:`scrub_quoted` only cuts runs of 24+ characters, so a
    13-character token or ``password hunter2-x`` would pass. Masked: registered secrets and
    long opaque runs (:func:`scrub_quoted`); any word of 6+ characters mixing letters and
    digits that is not a path, URL, number or duration; and the word after a credential
    word (``password x``, ``token: x``, ``key=x``). What stays readable is prose, paths and
    URLs without their query values, so the line still says what went wrong.
    """
    import re  # noqa: PLC0415

    text = scrub_quoted(text)
    out: list[str] = []
    mask_next = False
    for piece in re.split(f"({_WORD})", text):
        if not piece or not re.fullmatch(_WORD, piece):
            out.append(piece)
            mask_next = mask_next and "***" not in piece  # already masked
            continue
        parts = re.split(r"([=:?&])", piece)
        masked: list[str] = []
        for part in parts:
            if part in ("=", ":", "?", "&") or not part:
                masked.append(part)
                continue
            if mask_next or _token_like(part):
                masked.append("***")
                mask_next = False
            else:
                masked.append(part)
                mask_next = part.lower().strip("-_.") in _CREDENTIAL_WORDS
        out.append("".join(masked))
    return "".join(out)


def _token_like(word: str) -> bool:
    import re  # noqa: PLC0415

    if len(word) < 6 or "/" in word or "@" in word:
        return False  # paths, URLs' hosts, mail addresses: what failed, not a secret
    if re.fullmatch(r"v?[0-9][0-9.,_-]*([kKmMgG]i?[bB]?|ms|s|m|h|d)?", word):
        return False  # numbers, versions, sizes and durations
    return bool(re.search(r"[A-Za-z]", word) and re.search(r"[0-9]", word))


#: A diagnostic line longer than this is cut: a 5 MB config value must not become 5 MB of
#: stderr (Claude Code shows the helper's stderr in /status).
MAX_LINE = 2000


def neutralise(text: str, limit: int | None = MAX_LINE) -> str:
    """Show control and format characters (ESC, NUL, CR, BEL, bidi overrides) as escapes.

    Messages quote names from config files, environment variables and servers; raw, such
    characters could drive the terminal or hide part of the message. Lines longer than
    ``limit`` are shortened (None: never, for a value the user asked to see whole).
    """
    return "\n".join(_neutral_line(line, limit) for line in text.split("\n"))


def _neutral_line(line: str, limit: int | None) -> str:
    if not line.isprintable():
        line = "".join(
            ch
            if ch.isprintable() or ch == "\t"
            else (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
            for ch in line
        )
    if limit is not None and len(line) > limit:
        line = f"{line[:limit]}… ({len(line) - limit} more characters)"
    return line


def emit(text: str) -> None:
    """Write one diagnostic to stderr, scrubbed and neutralised, ending in a newline."""
    if not text.endswith("\n"):
        text += "\n"
    try:
        sys.stderr.write(neutralise(scrub(text)))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr closed: nothing safe left to do


def mask(value: str) -> str:
    """The redacted form shown by print-token: a hint of the shape, never enough to use."""
    if len(value) <= 12:
        return "…" if len(value) < 8 else f"…{value[-2:]}"
    head = value[:3] if value[2] in "-_" else value[:2]
    return f"{head}…{value[-4:]}"


#: What :class:`Masker` writes in place of a secret (the same ``***`` as :func:`scrub`).
STREAM_MASK = b"***"


class Masker:
    """Streaming replacement of secrets: holds back only a tail that could start one.

    One masker serves both streams of ``exec --mask``'s child, fed in the order the bytes
    arrive, the order a CI log that merges stdout and stderr shows them: a value whose first
    half goes to stdout and the rest to stderr is still one value there. Each byte remembers its
    stream; ``***`` goes to the stream where the match began.
    """

    def __init__(self, secrets: list[bytes]) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.pending = b""
        self.owners = bytearray()  # the stream of each pending byte

    @classmethod
    def for_values(cls, values: list[str]) -> Masker:
        """A masker for ``values`` and every :func:`derived_forms` of each."""
        return cls([form.encode() for value in values for form in derived_forms(value)])

    def feed(self, chunk: bytes) -> bytes:
        """One stream's view: masked bytes that can go out now."""
        return b"".join(data for _, data in self.feed_from(0, chunk))

    def flush(self) -> bytes:
        """End of stream: the held-back tail is not a whole secret, so it can go out."""
        return b"".join(data for _, data in self.flush_all())

    def feed_from(self, stream: int, chunk: bytes) -> list[tuple[int, bytes]]:
        """``chunk`` of ``stream`` (0 or 1) arrived: ``(stream, bytes)`` to write, in order."""
        data = self.pending + chunk
        owners = self.owners + bytes([stream]) * len(chunk)
        out: list[tuple[int, bytes]] = []
        start = 0
        while True:
            hit = self._next_hit(data, start)
            if hit is None:
                break
            index, secret = hit
            self._emit(out, data, owners, start, index)
            out.append((owners[index], STREAM_MASK))
            start = index + len(secret)
        keep = self._prefix_len(data[start:])
        self._emit(out, data, owners, start, len(data) - keep)
        self.pending = data[len(data) - keep :]
        self.owners = owners[len(owners) - keep :]
        return out

    def flush_all(self) -> list[tuple[int, bytes]]:
        """Every stream ended: the held-back tail goes to the streams it came from."""
        out: list[tuple[int, bytes]] = []
        self._emit(out, self.pending, self.owners, 0, len(self.pending))
        self.pending, self.owners = b"", bytearray()
        return out

    @staticmethod
    def _emit(
        out: list[tuple[int, bytes]], data: bytes, owners: bytearray, start: int, end: int
    ) -> None:
        """Append ``data[start:end]`` cut into runs of one stream each."""
        while start < end:
            stream = owners[start]
            run_end = owners.find(1 - stream, start, end)  # two streams: 0 and 1
            run_end = end if run_end < 0 else run_end
            if out and out[-1][0] == stream:
                out[-1] = (stream, out[-1][1] + data[start:run_end])
            else:
                out.append((stream, data[start:run_end]))
            start = run_end

    def _next_hit(self, data: bytes, start: int) -> tuple[int, bytes] | None:
        best: tuple[int, bytes] | None = None
        for secret in self.secrets:
            index = data.find(secret, start)
            if index >= 0 and (best is None or index < best[0]):
                best = (index, secret)
        return best

    def _prefix_len(self, tail: bytes) -> int:
        """Length of the longest suffix of ``tail`` that is a proper prefix of a secret."""
        longest = 0
        for secret in self.secrets:
            for size in range(min(len(secret) - 1, len(tail)), longest, -1):
                if tail.endswith(secret[:size]):
                    longest = size
                    break
        return longest


def masked_repr(value: tuple[object, ...], *hidden: str) -> str:
    """``Name(field=…, …)`` of a ``NamedTuple`` with the ``hidden`` fields left out.

    What a value carrying a secret (a key, a login token) shows in a traceback, a debugger or
    a stray log line: its shape and metadata, never the secret.
    """
    fields: tuple[str, ...] = getattr(value, "_fields", ())
    shown = ", ".join(
        f"{name}={item!r}" for name, item in zip(fields, value, strict=True) if name not in hidden
    )
    return f"{type(value).__name__}({shown})"
