"""HTTP handlers: /health, /health/live, /health/ready on one port, /metrics on the other.

Handlers answer HTTP/1.0 (one request per connection), so no idle keep-alive connection
can hold up a graceful shutdown. Access lines go to the logger at DEBUG: probes every
few seconds would drown everything else at INFO.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from psycopg_pool import ConnectionPool

from observatory_storage.service.backlog import LandingBacklog
from observatory_storage.service.health import health_document, readiness
from observatory_storage.settings import Settings

log = logging.getLogger("observatory_storage.service.access")


@dataclass(frozen=True)
class AppState:
    """What handlers need; attached to each HTTP server as ``server.app``."""

    settings: Settings
    pool: ConnectionPool
    backlog: LandingBacklog
    registry: CollectorRegistry


class _Handler(BaseHTTPRequestHandler):
    server_version = "observatory-storage"
    timeout = 10  # seconds a client may take to send its request

    @property
    def app(self) -> AppState:
        return self.server.app  # type: ignore[attr-defined]

    def _send(self, status: int, body: bytes, content_type: str, *, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, doc: dict, *, head: bool = False) -> None:
        body = (json.dumps(doc, indent=2, default=str) + "\n").encode()
        self._send(status, body, "application/json", head=head)

    def version_string(self) -> str:  # no Python version in the Server header
        return self.server_version

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _route(self, *, head: bool) -> None:
        raise NotImplementedError


class HealthHandler(_Handler):
    def _route(self, *, head: bool) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        app = self.app
        if path == "/health/live":
            self._json(200, {"status": "alive"}, head=head)
        elif path == "/health/ready":
            status, doc = readiness(app.pool, app.settings)
            self._json(status, doc, head=head)
        elif path == "/health":
            status, doc = health_document(app.pool, app.settings, app.backlog)
            self._json(status, doc, head=head)
        else:
            self._json(404, {"error": "not found",
                             "endpoints": ["/health", "/health/live", "/health/ready"]},
                       head=head)


class MetricsHandler(_Handler):
    def _route(self, *, head: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path != "/metrics":
            self._send(404, b"not found: metrics are at /metrics\n", "text/plain", head=head)
            return
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        self._send(200, encoder(self.app.registry), content_type, head=head)
