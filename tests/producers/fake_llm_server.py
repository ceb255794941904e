"""A local fake of the OpenAI and Anthropic HTTP APIs, stdlib only, deterministic.

    from fake_llm_server import start
    base_url, stop = start()          # e.g. "http://127.0.0.1:43121"
    openai.OpenAI(base_url=base_url + "/v1", api_key="sk-fake", max_retries=0)
    anthropic.Anthropic(base_url=base_url, api_key="sk-ant-fake", max_retries=0)
    ...
    stop()

Endpoints (one port, both APIs):
  POST /v1/chat/completions   OpenAI chat; honours "stream": true (SSE, with a final usage
                              chunk when stream_options.include_usage is true)
  POST /v1/embeddings         OpenAI embeddings; honours encoding_format "base64" (the SDK's
                              default) and "float"
  POST /v1/messages           Anthropic Messages; honours "stream": true (SSE event stream)

Scenario is chosen by the request header ``X-Fake-Scenario`` (pass it with the SDKs'
``extra_headers=``):
  (absent) / "ok"   normal answer with full usage: OpenAI prompt_tokens_details.cached_tokens
                    and completion_tokens_details.reasoning_tokens; Anthropic
                    cache_read_input_tokens and cache_creation_input_tokens
  "no-usage"        OpenAI chat/embeddings answer with no "usage" member at all
  "rate-limit"      HTTP 429 with the provider's error JSON body (OpenAI: error.type
                    "requests", code "rate_limit_exceeded"; Anthropic: "rate_limit_error")

Response models differ from request models the way the real APIs do (an alias resolves to
a dated snapshot) so request-vs-response model attributes can be told apart:
  gpt-4o-mini -> gpt-4o-mini-2024-07-18, text-embedding-3-small -> same,
  claude-sonnet-4-5 -> claude-sonnet-4-5-20250929 (other names are echoed back).

``server.requests`` (returned by ``start_server``) records (method, path, scenario) of
every request, for tests.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CREATED = 1765152000  # 2025-12-08T00:00:00Z, fixed so answers are deterministic

MODEL_SNAPSHOTS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "text-embedding-3-small": "text-embedding-3-small",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
}

OPENAI_TEXT = "The capital of France is Paris."
ANTHROPIC_TEXT = "Bonjour! The capital of France is Paris."
EMBEDDING = [0.0125, -0.0250, 0.0375, -0.0500, 0.0625, -0.0750, 0.0875, -0.1000]

# OpenAI usage for the "ok" chat answer
OPENAI_USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 256,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
OPENAI_STREAM_USAGE = {
    "prompt_tokens": 20,
    "completion_tokens": 8,
    "total_tokens": 28,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}
# Anthropic usage for the "ok" message: input_tokens excludes the cached parts (as the API does)
ANTHROPIC_USAGE = {
    "input_tokens": 50,
    "cache_creation_input_tokens": 2048,
    "cache_read_input_tokens": 4096,
    "output_tokens": 120,
    "service_tier": "standard",
}

OPENAI_429 = {
    "error": {
        "message": "Rate limit reached for gpt-4o-mini in organization org-fake on requests "
        "per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
ANTHROPIC_429 = {
    "type": "error",
    "error": {
        "type": "rate_limit_error",
        "message": "This request would exceed the rate limit for your organization of "
        "50 requests per minute. Please try again later.",
    },
    "request_id": "req_fake_429",
}


def _snapshot(model):
    return MODEL_SNAPSHOTS.get(model, model)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeLLM/1.0"
    sys_version = ""

    def log_message(self, format, *args):  # quiet
        pass

    # -- helpers -------------------------------------------------------------------
    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return {}

    def _send_json(self, status, payload, extra_headers=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _start_sse(self, extra_headers=None):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True

    def _sse(self, data, event=None):
        chunk = ""
        if event:
            chunk += f"event: {event}\n"
        chunk += "data: " + (data if isinstance(data, str) else json.dumps(data)) + "\n\n"
        self.wfile.write(chunk.encode())
        self.wfile.flush()

    # -- routing -------------------------------------------------------------------
    def do_GET(self):
        if self.path.rstrip("/") in ("", "/health"):
            return self._send_json(200, {"ok": True})
        self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self):
        scenario = (self.headers.get("X-Fake-Scenario") or "ok").lower()
        path = self.path.split("?")[0].rstrip("/")
        self.server.requests.append(("POST", path, scenario))
        body = self._body()
        if path.endswith("/chat/completions"):
            return self._openai_chat(body, scenario)
        if path.endswith("/embeddings"):
            return self._openai_embeddings(body, scenario)
        if path.endswith("/messages"):
            return self._anthropic_messages(body, scenario)
        self._send_json(404, {"error": {"message": f"unknown path {path}", "type": "invalid_request_error"}})

    # -- OpenAI --------------------------------------------------------------------
    def _openai_headers(self):
        return {
            "x-request-id": "req_fake_openai_0001",
            "openai-processing-ms": "42",
            "openai-organization": "org-fake",
            "openai-version": "2020-10-01",
        }

    def _openai_429(self):
        headers = self._openai_headers()
        headers.update({"retry-after": "20", "x-ratelimit-limit-requests": "3",
                        "x-ratelimit-remaining-requests": "0"})
        self._send_json(429, OPENAI_429, headers)

    def _openai_chat(self, body, scenario):
        if scenario == "rate-limit":
            return self._openai_429()
        model = _snapshot(body.get("model", "gpt-4o-mini"))
        if body.get("stream"):
            return self._openai_chat_stream(body, model)
        answer = {
            "id": "chatcmpl-fake0001",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake0001",
            "service_tier": "default",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": OPENAI_TEXT, "refusal": None,
                                "annotations": []},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
        }
        if scenario != "no-usage":
            answer["usage"] = OPENAI_USAGE
        else:
            answer["id"] = "chatcmpl-fake0002"
        self._send_json(200, answer, self._openai_headers())

    def _openai_chat_stream(self, body, model):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self._start_sse(self._openai_headers())
        base = {"id": "chatcmpl-fake0003", "object": "chat.completion.chunk", "created": CREATED,
                "model": model, "system_fingerprint": "fp_fake0001", "service_tier": "default"}
        pieces = ["The capital", " of France", " is Paris."]
        first = dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                     "logprobs": None, "finish_reason": None}])
        if include_usage:
            first["usage"] = None
        self._sse(first)
        for p in pieces:
            chunk = dict(base, choices=[{"index": 0, "delta": {"content": p}, "logprobs": None,
                                         "finish_reason": None}])
            if include_usage:
                chunk["usage"] = None
            self._sse(chunk)
        last = dict(base, choices=[{"index": 0, "delta": {}, "logprobs": None,
                                    "finish_reason": "stop"}])
        if include_usage:
            last["usage"] = None
        self._sse(last)
        if include_usage:
            self._sse(dict(base, choices=[], usage=OPENAI_STREAM_USAGE))
        self._sse("[DONE]")

    def _openai_embeddings(self, body, scenario):
        if scenario == "rate-limit":
            return self._openai_429()
        model = _snapshot(body.get("model", "text-embedding-3-small"))
        inputs = body.get("input", "")
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        fmt = body.get("encoding_format") or "float"
        data = []
        for i, _ in enumerate(inputs):
            vec = [v * (i + 1) for v in EMBEDDING]
            if fmt == "base64":
                emb = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
            else:
                emb = vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        answer = {"object": "list", "data": data, "model": model}
        if scenario != "no-usage":
            answer["usage"] = {"prompt_tokens": 8 * len(inputs), "total_tokens": 8 * len(inputs)}
        self._send_json(200, answer, self._openai_headers())

    # -- Anthropic -----------------------------------------------------------------
    def _anthropic_headers(self):
        return {"request-id": "req_fake_anthropic_0001", "anthropic-organization-id": "org-fake"}

    def _anthropic_messages(self, body, scenario):
        if scenario == "rate-limit":
            headers = self._anthropic_headers()
            headers.update({"retry-after": "15", "x-should-retry": "true"})
            return self._send_json(429, ANTHROPIC_429, headers)
        model = _snapshot(body.get("model", "claude-sonnet-4-5"))
        if body.get("stream"):
            return self._anthropic_stream(model)
        usage = dict(ANTHROPIC_USAGE)
        if scenario == "no-usage":  # Anthropic always sends usage; keep only the required part
            usage = {"input_tokens": 50, "output_tokens": 120}
        answer = {
            "id": "msg_fake0001",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": ANTHROPIC_TEXT}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        self._send_json(200, answer, self._anthropic_headers())

    def _anthropic_stream(self, model):
        self._start_sse(self._anthropic_headers())
        start_usage = {"input_tokens": 25, "cache_creation_input_tokens": 0,
                       "cache_read_input_tokens": 1024, "output_tokens": 1}
        self._sse({"type": "message_start", "message": {
            "id": "msg_fake0002", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}},
            event="message_start")
        self._sse({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": ""}}, event="content_block_start")
        self._sse({"type": "ping"}, event="ping")
        for p in ["Bonjour!", " The capital of France", " is Paris."]:
            self._sse({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "text_delta", "text": p}}, event="content_block_delta")
        self._sse({"type": "content_block_stop", "index": 0}, event="content_block_stop")
        self._sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                   "usage": {"output_tokens": 15}}, event="message_delta")
        self._sse({"type": "message_stop"}, event="message_stop")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.requests = []


def start_server(host="127.0.0.1", port=0):
    """Start in a daemon thread; returns (server, base_url, stop)."""
    server = _Server((host, port), _Handler)
    thread = threading.Thread(target=server.serve_forever, name="fake-llm-server", daemon=True)
    thread.start()
    base_url = f"http://{host}:{server.server_address[1]}"

    def stop():
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return server, base_url, stop


def start(host="127.0.0.1", port=0):
    """Start the fake on a free loopback port; returns (base_url, stop)."""
    _, base_url, stop = start_server(host, port)
    return base_url, stop


if __name__ == "__main__":
    import sys
    import time

    url, stop_fn = start(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stop_fn()
