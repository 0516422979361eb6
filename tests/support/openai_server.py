"""An OpenAI-compatible chat-completions server on 127.0.0.1, for tests and for running the
examples offline.

    python tests/support/openai_server.py --port 8901 [--api-key sk-local]

then point a provider at it (`base_url = "http://127.0.0.1:8901/v1"`). It speaks
`POST /v1/chat/completions` (streaming off), `POST /v1/embeddings` and `GET /v1/models` with
the standard library alone, so that it runs without installing anything.

Its embeddings are bags of words hashed into EMBEDDING_DIMENSIONS dimensions (normalized),
each word first replaced by its entry in `StandIn.synonyms`: texts sharing words, or words
a test declared synonyms, are close.

Unscripted, it answers every request by itself, deterministically: text that echoes the
last user message; for a JSON-schema response format (or a forced tool call) an object
that fits the schema, choosing an enum value whose words the user's message shares (so a
classifier routes sensibly); logprobs when asked; usage counting whitespace-separated
words. A test scripts the next answers with `StandIn.script(...)`: a status with headers
(429 with Retry-After, 500), a delay past the client's timeout, a body that is not JSON, a
tool call, a refusal, chosen content, usage or logprobs.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import math
import re
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMPLETIONS = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
EMBEDDING_DIMENSIONS = 64
MODELS = "/v1/models"
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Answer:
    """One scripted answer; unset fields are filled as the unscripted server would."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    content: str | None = None
    json_content: Any = None
    """Content sent as this value's JSON text (an extraction or a classification)."""
    tool_call: tuple[str, Any] | None = None
    """(function name, arguments): answered as a tool call, arguments as JSON text."""
    refusal: str | None = None
    finish_reason: str | None = None
    model: str | None = None
    usage: Mapping[str, Any] | None = None
    omit_usage: bool = False
    logprobs: list[dict[str, Any]] | None = None
    """The choice's logprobs.content as given (else made when the request asks)."""
    error: Mapping[str, Any] | None = None
    """The `error` object of a status of 400 or more (else a generic one)."""
    raw: bytes | None = None
    """The body sent as is (malformed JSON), as application/json."""
    delay_s: float = 0.0


def rate_limited(retry_after: str = "1") -> Answer:
    return Answer(
        status=429,
        headers={"Retry-After": retry_after},
        error={"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"},
    )


def server_error() -> Answer:
    return Answer(status=500, error={"message": "The server had an error", "type": "server_error"})


def bad_request(message: str = "Invalid request") -> Answer:
    return Answer(status=400, error={"message": message, "type": "invalid_request_error"})


def slow(seconds: float) -> Answer:
    return Answer(delay_s=seconds)


def malformed() -> Answer:
    return Answer(raw=b'{"id": "chatcmpl-cut", "choices": [{"index": 0, "mess')


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class StandIn:
    """The running server: its URL, what it received, and the answers scripted next."""

    api_key: str | None = None
    base_url: str = ""
    received: list[Received] = field(default_factory=list)
    _script: deque[Answer] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    synonyms: dict[str, str] = field(default_factory=dict)
    """Words the embeddings take as another (e.g. {"car": "automobile"})."""

    def script(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order, then as unscripted."""
        with self._lock:
            self._script.extend(answers)

    @property
    def completions(self) -> list[Received]:
        return [r for r in self.received if r.path == COMPLETIONS]

    def _next(self) -> Answer | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    def reply(
        self, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], bytes]:
        """The status, headers and body for a request."""
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(
                401,
                {
                    "message": "Incorrect API key provided",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                },
            )
        if path == MODELS:
            return _json(
                200,
                {
                    "object": "list",
                    "data": [{"id": "stand-in-small", "object": "model", "owned_by": "stepline"}],
                },
            )
        if path == EMBEDDINGS:
            return self._embeddings(body)
        if path != COMPLETIONS:
            return _error(404, {"message": f"no route {path}", "type": "invalid_request_error"})
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("messages"), list)
            or not body.get("model")
        ):
            return _error(
                400, {"message": "model and messages are required", "type": "invalid_request_error"}
            )
        if body.get("stream"):
            return _error(
                400, {"message": "streaming is not supported here", "type": "invalid_request_error"}
            )
        answer = self._next() or Answer()
        if answer.delay_s:
            self._stopping.wait(answer.delay_s)
        if answer.raw is not None:
            return 200, {"content-type": "application/json", **answer.headers}, answer.raw
        if answer.status >= 400:
            status, extra, data = _error(
                answer.status, dict(answer.error or {"message": "error", "type": "error"})
            )
            return status, {**extra, **answer.headers}, data
        completion = self._completion(body, answer)
        return (
            200,
            {"content-type": "application/json", **answer.headers},
            json.dumps(completion).encode(),
        )

    def _embeddings(self, body: Any) -> tuple[int, dict[str, str], bytes]:
        texts = body.get("input") if isinstance(body, dict) else None
        if isinstance(texts, str):
            texts = [texts]
        if not body.get("model") or not isinstance(texts, list) or not texts:
            return _error(
                400, {"message": "model and input are required", "type": "invalid_request_error"}
            )
        answer = self._next()
        if answer is not None and answer.status >= 400:
            return _error(answer.status, dict(answer.error or {"message": "error"}))
        data = []
        for index, text in enumerate(texts):
            vector = self.embedding(str(text))
            encoded: Any = vector
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        words = sum(len(_WORD.findall(str(text).lower())) for text in texts)
        reply = {
            "object": "list",
            "model": body["model"],
            "data": data,
            "usage": {"prompt_tokens": words, "total_tokens": words},
        }
        return _json(200, reply)

    def embedding(self, text: str) -> list[float]:
        """The stand-in's embedding of a text (see the module's docstring)."""
        vector = [0.0] * EMBEDDING_DIMENSIONS
        for word in _WORD.findall(text.lower()):
            word = self.synonyms.get(word, word)
            digest = hashlib.sha256(word.encode()).digest()
            vector[digest[0] % EMBEDDING_DIMENSIONS] += 1.0 if digest[1] % 2 else -1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    def _completion(self, request: dict[str, Any], answer: Answer) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None}
        finish_reason = answer.finish_reason or "stop"
        # A scripted answer wins; unscripted, a forced function call is made, else text.
        text = (
            json.dumps(answer.json_content) if answer.json_content is not None else answer.content
        )
        tool = answer.tool_call or (_forced_tool_call(request) if text is None else None)
        if answer.refusal is not None:
            message["refusal"] = answer.refusal
        elif tool is not None:
            name, arguments = tool
            message["tool_calls"] = [
                {
                    "id": f"call_{next(self._ids)}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
            ]
            finish_reason = answer.finish_reason or "tool_calls"
        else:
            message["content"] = text if text is not None else _unscripted_content(request)
        message.setdefault("tool_calls", [])
        answered = _answered_text(message)
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": finish_reason,
        }
        if answer.logprobs is not None:
            choice["logprobs"] = {"content": answer.logprobs}
        elif request.get("logprobs"):
            choice["logprobs"] = {
                "content": _logprobs(str(answered), int(request.get("top_logprobs") or 0))
            }
        completion: dict[str, Any] = {
            "id": f"chatcmpl-standin{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": answer.model or request["model"],
            "choices": [choice],
        }
        if not answer.omit_usage:
            prompt = sum(
                _count_words(m.get("content")) for m in request["messages"] if isinstance(m, dict)
            )
            completion_tokens = _count_words(answered)
            completion["usage"] = dict(
                answer.usage
                or {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt + completion_tokens,
                }
            )
        return completion


def _answered_text(message: dict[str, Any]) -> str:
    """What the model said: its content, else its first tool call's arguments."""
    if message.get("content"):
        return str(message["content"])
    if message.get("tool_calls"):
        return str(message["tool_calls"][0]["function"]["arguments"])
    return str(message.get("refusal") or "")


def _json(status: int, payload: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json"}, json.dumps(payload).encode()


def _error(status: int, error: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return _json(status, {"error": {"param": None, "code": None, **error}})


def _count_words(content: Any) -> int:
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        return sum(_count_words(part.get("text")) for part in content if isinstance(part, dict))
    return 0


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _last(request: dict[str, Any], role: str) -> str:
    for message in reversed(request["messages"]):
        if isinstance(message, dict) and message.get("role") == role:
            return _text_of(message.get("content"))
    return ""


def _unscripted_content(request: dict[str, Any]) -> str:
    response_format = request.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        return json.dumps(example(schema, request))
    if isinstance(response_format, dict) and response_format.get("type") == "json_object":
        return json.dumps({"answer": _last(request, "user")})
    return f"(stand-in answer) You said: {_last(request, 'user')}"


def _forced_tool_call(request: dict[str, Any]) -> tuple[str, Any] | None:
    """A call of the function `tool_choice` forces, with arguments fitting its parameters."""
    choice = request.get("tool_choice")
    if not isinstance(choice, dict):
        return None
    name = (choice.get("function") or {}).get("name")
    for tool in request.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and function.get("name") == name:
            return name, example(function.get("parameters") or {}, request)
    return None


def example(schema: Any, request: dict[str, Any]) -> Any:
    """A value that fits `schema`; an enum picks the value whose words the conversation's
    user message (and the system message's line about it) share most."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return _closest(schema["enum"], request)
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return example(schema[key][0], request)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: example(sub, request) for name, sub in properties.items()}
    if kind == "array":
        return [example(schema.get("items") or {}, request)]
    if kind == "string":
        return f"(stand-in {schema.get('description') or 'text'})"[:80]
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return float(max(schema.get("minimum", 1.5), 1.5))
    if kind == "boolean":
        return True
    return None


def _closest(options: list[Any], request: dict[str, Any]) -> Any:
    user = set(_WORD.findall(_last(request, "user").lower()))
    system = _last(request, "system").lower()

    def score(option: Any) -> int:
        words = set(_WORD.findall(str(option).lower()))
        for line in system.splitlines():
            if str(option).lower() in line:
                words |= set(_WORD.findall(line))
        return len(words & user)

    return max(options, key=score)  # ties: the first listed


def _logprobs(text: str, top: int) -> list[dict[str, Any]]:
    """A logprob per word: -0.1, -0.2, -0.3 in turn, with `top` alternatives."""
    tokens = []
    for index, word in enumerate(text.split()):
        logprob = -0.1 * (index % 3 + 1)
        alternatives = [{"token": word, "logprob": logprob, "bytes": None}]
        alternatives += [
            {"token": f"alt{n}", "logprob": -2.0 - n, "bytes": None} for n in range(1, top)
        ]
        tokens.append(
            {"token": word, "logprob": logprob, "bytes": None, "top_logprobs": alternatives[:top]}
        )
    return tokens


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            path = self.path.split("?", 1)[0]
            headers = {name.lower(): value for name, value in self.headers.items()}
            state._record(Received(path, headers, body))
            status, reply_headers, data = state.reply(path, headers, body)
            try:
                self.send_response(status)
                for name, value in reply_headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout): nothing to tell it

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def openai_stand_in(
    *, api_key: str | None = None, host: str = "127.0.0.1", port: int = 0
) -> Iterator[StandIn]:
    """Serve on `host:port` (a free port by default) until the block ends."""
    state = StandIn(api_key=api_key)
    server = ThreadingHTTPServer((host, port), _handler(state))
    server.daemon_threads = True
    state.base_url = f"http://{host}:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state._stopping.set()
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description="An OpenAI-compatible stand-in, offline.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8901)
    parser.add_argument("--api-key", default=None, help="Require this key (Bearer).")
    args = parser.parse_args()
    with openai_stand_in(api_key=args.api_key, host=args.host, port=args.port) as server:
        print(f"OpenAI-compatible stand-in on {server.base_url} (Ctrl-C stops it)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
