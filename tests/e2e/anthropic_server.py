"""A small LLM gateway on 127.0.0.1 speaking the three APIs Claude Code can use through a proxy.

One server answers all three deployments of Claude Code's "LLM gateway" guide, told apart by
the path (as LiteLLM's pass-through routes are):

- **anthropic** (``ANTHROPIC_BASE_URL``): ``POST /v1/messages``, streamed as Server-Sent
  Events when the body says ``"stream": true`` (what the CLI sends), one JSON message otherwise.
- **bedrock** (``ANTHROPIC_BEDROCK_BASE_URL``, ``CLAUDE_CODE_SKIP_BEDROCK_AUTH=1``):
  ``POST …/model/{id}/invoke-with-response-stream`` answered in the AWS event-stream framing,
  one ``chunk`` event per Anthropic stream event (its JSON base64-encoded in ``{"bytes": …}``),
  ``POST …/model/{id}/invoke`` with the JSON message, and ``GET …/inference-profiles``
  (Bedrock's ListInferenceProfiles, which the CLI sends without any key) with an empty list.
- **vertex** (``ANTHROPIC_VERTEX_BASE_URL``, ``CLAUDE_CODE_SKIP_VERTEX_AUTH=1``):
  ``POST …/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:streamRawPredict``
  (the same SSE as Anthropic's) and ``…:rawPredict`` (JSON).

Requests in absolute form (``POST http://host/v1/messages``) are answered too, so the server
can stand as the HTTP proxy in ``HTTP_PROXY`` and a test can see ``Proxy-Authorization``.
Besides, ``/mcp/{name}`` is a minimal streamable-HTTP MCP server (JSON-RPC ``initialize`` and
``tools/list`` with no tools; notifications get 202), recorded like the rest, so a test can
see the headers a ``headersHelper`` gave each MCP server.

The server records the two headers that can carry the key (``x-api-key`` and
``Authorization: Bearer``) for every request, so a test can tell exactly which key reached the
proxy, in which header, and how often. A key on the revocation list (or none) is refused the
way a LiteLLM proxy refuses a revoked virtual key: 401 — or, with ``refuse_status = 400``, the
400 "No connected db." a LiteLLM proxy without its database answers for any key but the master
key.

Standard library only (``http.server``), one thread per connection, bound to 127.0.0.1 on a
free port. Nothing is written to stderr: a test reads :attr:`AnthropicServer.requests`.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import unquote

#: What the fake model answers; tests look for it in Claude Code's JSON output.
DEFAULT_REPLY = "keybroker-e2e-ok"
MODEL = "claude-e2e-test"

Kind = Literal["anthropic", "bedrock", "vertex", "bedrock-profiles", "mcp", "other"]
#: Request kinds that are a model call (what :meth:`AnthropicServer.messages` returns).
INFERENCE: frozenset[str] = frozenset({"anthropic", "bedrock", "vertex"})

_BEDROCK = re.compile(r"^(?:.*)/model/(?P<model>[^/]+)/(?P<op>invoke|invoke-with-response-stream)$")
_VERTEX = re.compile(
    r"^(?:.*)/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/publishers/anthropic/"
    r"models/(?P<model>[^/:]+):(?P<op>rawPredict|streamRawPredict)$"
)
#: LiteLLM's answer for a non-master key when it has no database (it is a 400, not a 401).
NO_DB = {
    "error": {
        "message": "No connected db.",
        "type": "no_db_connection",
        "param": "None",
        "code": "400",
    }
}


def route(method: str, path: str) -> tuple[Kind, dict[str, str]]:
    """Which API a request is for, and the parts of its path (model, op, project, region)."""
    bare = unquote(path.split("?", 1)[0])
    if bare.startswith(("http://", "https://")):  # absolute form: we are the HTTP proxy
        bare = "/" + bare.split("://", 1)[1].partition("/")[2]
    if method == "POST" and bare == "/v1/messages":
        return "anthropic", {}
    if method == "POST" and (m := _BEDROCK.match(bare)):
        return "bedrock", m.groupdict()
    if method == "POST" and (m := _VERTEX.match(bare)):
        return "vertex", m.groupdict()
    if method == "GET" and bare.endswith("/inference-profiles"):
        return "bedrock-profiles", {}
    if bare.startswith("/mcp/"):
        return "mcp", {"server": bare[len("/mcp/") :]}
    return "other", {}


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
    def kind(self) -> Kind:
        return route(self.method, self.path)[0]

    @property
    def is_message(self) -> bool:
        return self.kind in INFERENCE

    @property
    def model(self) -> str | None:
        """The model the call names: in the body (anthropic) or in the path."""
        kind, parts = route(self.method, self.path)
        if kind == "anthropic":
            return self.body.get("model") if isinstance(self.body, dict) else None
        return parts.get("model")

    @property
    def key(self) -> str | None:
        """The key the client sent (``x-api-key`` first, as Anthropic reads it)."""
        return self.x_api_key if self.x_api_key is not None else self.bearer


class AnthropicServer:
    """Start with :meth:`start`, stop with :meth:`stop`; :meth:`reset` between tests."""

    def __init__(self, reply: str = DEFAULT_REPLY) -> None:
        self.reply = reply
        #: What a refused key gets: 401 (a gateway that says so) or 400 (LiteLLM without DB).
        self.refuse_status = 401
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._revoked: set[str] = set()
        self._accepted: set[str] | None = None
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
            self._accepted = None
            self.refuse_status = 401

    def revoke(self, *keys: str) -> None:
        """From now on, answer 401 to requests that carry any of ``keys``."""
        with self._lock:
            self._revoked.update(keys)

    def only_accept(self, *keys: str) -> None:
        """From now on, refuse every key but ``keys`` (a gateway that knows its keys)."""
        with self._lock:
            self._accepted = set(keys)

    def refuses(self, key: str | None) -> bool:
        """A missing or empty key is refused like a revoked one (Anthropic answers 401)."""
        with self._lock:
            unknown = self._accepted is not None and key not in self._accepted
            return not key or key in self._revoked or unknown

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def messages(self) -> list[Recorded]:
        """Only the model calls (of any of the three APIs), in arrival order."""
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
    """Answers the three model APIs; everything else gets a JSON 404 (and is recorded too)."""

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
        kind, parts = route(self.command, self.path)
        if kind == "mcp":
            status = 200 if self.command == "POST" else 405
        elif kind == "bedrock-profiles":
            status = 200  # ListInferenceProfiles: the CLI sends it without any key
        elif kind not in INFERENCE:
            status = 404
        elif kind == "anthropic" and (
            state.refuses(x_api_key) or (auth is not None and state.refuses(bearer))
        ):
            status = state.refuse_status
        elif kind != "anthropic" and state.refuses(bearer):
            status = state.refuse_status  # Bedrock/Vertex gateways read Authorization only
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
        if kind == "mcp":
            self._mcp(body, parts["server"])
        elif status == 404:
            self._json(404, _error("not_found_error", f"no route for {self.command} {self.path}"))
        elif status == 400:
            self._json(400, NO_DB)
        elif status == 401:
            self._json(
                401,
                _error("authentication_error", "invalid x-api-key")
                if kind == "anthropic"
                else _litellm_auth_error(),
            )
        elif kind == "bedrock-profiles":
            self._json(200, {"inferenceProfileSummaries": []})
        elif kind == "bedrock" and parts["op"] == "invoke-with-response-stream":
            self._event_stream(body, parts["model"])
        elif kind == "vertex" and parts["op"] == "streamRawPredict":
            self._stream(body, parts["model"])
        elif kind == "anthropic" and isinstance(body, dict) and body.get("stream"):
            self._stream(body, None)
        else:
            self._json(200, self._message(body, parts.get("model")))

    # --- answers ---------------------------------------------------------------------------
    def _mcp(self, body: Any, server: str) -> None:
        """Just enough MCP (streamable HTTP, JSON answers) for Claude Code to connect."""
        if self.command != "POST" or not isinstance(body, dict):
            self._json(405, {"error": "no SSE stream here"})
            return
        if "id" not in body:  # a notification
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        method = body.get("method")
        result: dict[str, Any] = {}
        if method == "initialize":
            params = body.get("params") or {}
            result = {
                "protocolVersion": params.get("protocolVersion", "2025-03-26"),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": server, "version": "1"},
            }
        elif method == "tools/list":
            result = {"tools": []}
        self._json(200, {"jsonrpc": "2.0", "id": body["id"], "result": result})

    def _message(self, body: Any, model: str | None) -> dict[str, Any]:
        if model is None:
            model = body.get("model", MODEL) if isinstance(body, dict) else MODEL
        command = bash_request(body)
        if command is not None:  # the model asks Claude Code to run a Bash command
            return {
                "id": f"msg_e2e_{self.server_state.next_id():06d}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [
                    {
                        "type": "tool_use",
                        "id": f"toolu_e2e_{self.server_state.next_id()}",
                        "name": "Bash",
                        "input": {"command": command, "description": "e2e"},
                    }
                ],
                "stop_reason": "tool_use",
                "stop_sequence": None,
                "usage": {"input_tokens": 12, "output_tokens": 5},
            }
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

    def _events(self, body: Any, model: str | None) -> list[tuple[str, dict[str, Any]]]:
        """The event sequence of the Messages streaming API for one block: text (a ping, then
        the text in pieces) or tool_use (its input as one JSON delta)."""
        message = self._message(body, model)
        block = message.pop("content")[0]
        stop_reason = message["stop_reason"]
        message.update(content=[], stop_reason=None)
        ping: list[tuple[str, dict[str, Any]]] = []
        if stop_reason == "tool_use":
            start = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
        else:
            message["usage"] = {"input_tokens": 12, "output_tokens": 1}
            start = {"type": "text", "text": ""}
            ping.append(("ping", {"type": "ping"}))
            deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block["text"])]
        return [
            ("message_start", {"type": "message_start", "message": message}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": start},
            ),
            *ping,
            *(
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
                for delta in deltas
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": 5},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]

    def _stream(self, body: Any, model: str | None) -> None:
        """Server-Sent Events (Anthropic's /v1/messages and Vertex's streamRawPredict)."""
        self._send_stream("text/event-stream", _sse(self._events(body, model)))

    def _event_stream(self, body: Any, model: str) -> None:
        """Bedrock's invoke-with-response-stream: AWS event-stream messages of ``chunk`` events."""
        self._send_stream(
            "application/vnd.amazon.eventstream",
            (_chunk(payload) for _, payload in self._events(body, model)),
        )

    def _send_stream(self, content_type: str, frames: Iterable[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("request-id", f"req_e2e_{self.server_state.next_id():06d}")
        self.end_headers()
        self.close_connection = True
        for data in frames:
            self.wfile.write(data)
            self.wfile.flush()


#: A prompt ``RUNBASH: <command>`` makes the model ask for that Bash command once.
RUNBASH = "RUNBASH:"


def bash_request(body: Any) -> str | None:
    """The command of a ``RUNBASH:`` prompt while no tool result has come back yet."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not messages:
        return None
    text = json.dumps(messages[0])
    if RUNBASH not in text or '"tool_result"' in json.dumps(messages):
        return None
    content = messages[0].get("content")
    if isinstance(content, list):
        content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str) or RUNBASH not in content:
        return None
    return content.split(RUNBASH, 1)[1].strip().splitlines()[0]


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _litellm_auth_error() -> dict[str, Any]:
    """What LiteLLM answers a revoked virtual key on its pass-through routes."""
    return {
        "error": {
            "message": "Authentication Error, Invalid proxy server token passed.",
            "type": "auth_error",
            "param": "None",
            "code": "401",
        }
    }


def _pieces(text: str) -> Iterator[str]:
    """Split the reply in two deltas, so the client really assembles a stream."""
    middle = max(1, len(text) // 2)
    yield text[:middle]
    if text[middle:]:
        yield text[middle:]


def _sse(events: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[bytes]:
    for name, payload in events:
        yield f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


def _chunk(event: dict[str, Any]) -> bytes:
    """One AWS event-stream message: a Bedrock ``chunk`` event carrying ``event`` base64-encoded.

    Framing (big-endian): total length, headers length, CRC32 of those 8 bytes, the headers
    (name length, name, type 7 = string, value length, value), the payload, CRC32 of it all.
    """
    payload = json.dumps({"bytes": base64.b64encode(json.dumps(event).encode()).decode()}).encode()
    headers = b"".join(
        bytes([len(name)]) + name + b"\x07" + struct.pack(">H", len(value)) + value
        for name, value in (
            (b":event-type", b"chunk"),
            (b":content-type", b"application/json"),
            (b":message-type", b"event"),
        )
    )
    prelude = struct.pack(">II", 12 + len(headers) + len(payload) + 4, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))
