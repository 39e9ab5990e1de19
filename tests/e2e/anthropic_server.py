"""A small Anthropic-shaped Messages API on 127.0.0.1, for driving the real Claude Code CLI.

Claude Code only needs ``POST /v1/messages`` to answer a ``claude -p`` prompt: streamed as
Server-Sent Events when the body says ``"stream": true`` (what the CLI sends), as one JSON
message otherwise. The server records the two headers that carry the key (``x-api-key`` and
``Authorization: Bearer``) for every request, so a test can tell exactly which key reached the
proxy and how often, and answers 401 ``authentication_error`` for keys on its revocation list,
the way a LiteLLM proxy answers a revoked virtual key.

Standard library only (``http.server``), one thread per connection, bound to 127.0.0.1 on a
free port. Nothing is written to stderr: a test reads :attr:`AnthropicServer.requests`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: What the fake model answers; tests look for it in Claude Code's JSON output.
DEFAULT_REPLY = "keybroker-e2e-ok"
MODEL = "claude-e2e-test"


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it (the body is kept parsed when it is JSON)."""

    method: str
    path: str
    x_api_key: str | None
    bearer: str | None
    status: int
    at: float
    headers: dict[str, str] = field(repr=False)
    body: Any = field(repr=False, default=None)

    @property
    def is_message(self) -> bool:
        return self.method == "POST" and self.path.split("?", 1)[0] == "/v1/messages"

    @property
    def key(self) -> str | None:
        """The key the client sent (``x-api-key`` first, as Anthropic reads it)."""
        return self.x_api_key if self.x_api_key is not None else self.bearer


class AnthropicServer:
    """Start with :meth:`start`, stop with :meth:`stop`; :meth:`reset` between tests."""

    def __init__(self, reply: str = DEFAULT_REPLY) -> None:
        self.reply = reply
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._revoked: set[str] = set()
        self._ids = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> AnthropicServer:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="anthropic-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> AnthropicServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The value for ``ANTHROPIC_BASE_URL``."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- what tests set and read -----------------------------------------------------------
    def reset(self) -> None:
        """Forget recorded requests and revocations (one server is shared by all tests)."""
        with self._lock:
            self._requests.clear()
            self._revoked.clear()

    def revoke(self, *keys: str) -> None:
        """From now on, answer 401 to requests that carry any of ``keys``."""
        with self._lock:
            self._revoked.update(keys)

    def refuses(self, key: str | None) -> bool:
        """A missing or empty key is refused like a revoked one (Anthropic answers 401)."""
        with self._lock:
            return not key or key in self._revoked

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def messages(self) -> list[Recorded]:
        """Only the ``POST /v1/messages`` calls, in arrival order."""
        return [r for r in self.requests if r.is_message]

    def keys_seen(self) -> list[str | None]:
        return [r.key for r in self.messages()]

    def _record(self, recorded: Recorded) -> None:
        with self._lock:
            self._requests.append(recorded)

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)


class _Handler(BaseHTTPRequestHandler):
    """Answers the Messages API; everything else gets a JSON 404 (and is recorded too)."""

    server_state: AnthropicServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence: the test reads the recorded requests, not a log."""

    def do_GET(self) -> None:
        self._answer(None)

    def do_HEAD(self) -> None:
        self._answer(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self._answer(body)

    def _answer(self, body: Any) -> None:
        state = self.server_state
        x_api_key = self.headers.get("x-api-key")
        auth = self.headers.get("authorization")
        bearer = auth[len("Bearer ") :] if auth and auth.startswith("Bearer ") else None
        is_message = self.command == "POST" and self.path.split("?", 1)[0] == "/v1/messages"
        if not is_message:
            status = 404
        elif state.refuses(x_api_key) or (auth is not None and state.refuses(bearer)):
            status = 401
        else:
            status = 200
        state._record(
            Recorded(
                method=self.command,
                path=self.path,
                x_api_key=x_api_key,
                bearer=bearer,
                status=status,
                at=time.monotonic(),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
        )
        if status == 404:
            self._json(404, _error("not_found_error", f"no route for {self.command} {self.path}"))
        elif status == 401:
            self._json(401, _error("authentication_error", "invalid x-api-key"))
        elif isinstance(body, dict) and body.get("stream"):
            self._stream(body)
        else:
            self._json(200, self._message(body))

    # --- answers ---------------------------------------------------------------------------
    def _message(self, body: Any) -> dict[str, Any]:
        model = body.get("model", MODEL) if isinstance(body, dict) else MODEL
        return {
            "id": f"msg_e2e_{self.server_state.next_id():06d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": self.server_state.reply}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 5},
        }

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", f"req_e2e_{self.server_state.next_id():06d}")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _stream(self, body: dict[str, Any]) -> None:
        """The SSE sequence of the Messages streaming API, one text block."""
        message = self._message(body)
        text = message.pop("content")[0]["text"]
        message.update(content=[], stop_reason=None)
        message["usage"] = {"input_tokens": 12, "output_tokens": 1}
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": message}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0,
                 "content_block": {"type": "text", "text": ""}},
            ),
            ("ping", {"type": "ping"}),
            *(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0,
                     "delta": {"type": "text_delta", "text": piece}},
                )
                for piece in _pieces(text)
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {"type": "message_delta",
                 "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                 "usage": {"output_tokens": 5}},
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("request-id", f"req_e2e_{self.server_state.next_id():06d}")
        self.end_headers()
        self.close_connection = True
        for data in _sse(events):
            self.wfile.write(data)
            self.wfile.flush()


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _pieces(text: str) -> Iterator[str]:
    """Split the reply in two deltas, so the client really assembles a stream."""
    middle = max(1, len(text) // 2)
    yield text[:middle]
    if text[middle:]:
        yield text[middle:]


def _sse(events: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[bytes]:
    for name, payload in events:
        yield f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()
