"""Run the service: two listeners, one pool, graceful shutdown on SIGTERM/SIGINT.

HTTP comes from the standard library's ``ThreadingHTTPServer``: the service answers a
probe every few seconds and a scrape every 15-60 s, each a handful of small queries, so
a thread per request is plenty; it is maintained with Python itself, adds no dependency
and, unlike ``prometheus_client.start_http_server``, lets us own shutdown (stop
accepting, join in-flight request threads, then close the pool). An ASGI stack would
bring an event loop and a server process model for no gain here.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from http.server import ThreadingHTTPServer

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from observatory_storage.db.connection import make_pool
from observatory_storage.service.app import AppState, HealthHandler, MetricsHandler
from observatory_storage.service.backlog import LandingBacklog
from observatory_storage.service.collector import StorageCollector
from observatory_storage.service.health import PROBE_TIMEOUT_SECONDS
from observatory_storage.service.snapshot import CounterRefresher
from observatory_storage.settings import Settings

log = logging.getLogger(__name__)

POOL_CLOSE_SECONDS = 3.0


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins request threads: in-flight ones finish
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler, app: AppState):
        self.address_family = _family(address[0])
        self.app = app
        super().__init__(address, handler)


def _family(host: str) -> socket.AddressFamily:
    infos = socket.getaddrinfo(host or None, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return infos[0][0]


class Service:
    """Build with settings, ``start()``, then ``stop()`` (from any thread but the servers')."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.pool = make_pool(settings, name="observatory-storage-service", open=False)
        self.refresher = CounterRefresher(self.pool, settings, timeout=PROBE_TIMEOUT_SECONDS)
        self.backlog = LandingBacklog(settings, self.pool, probe_timeout=PROBE_TIMEOUT_SECONDS)
        registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=registry)  # process_resident_memory_bytes and friends
        PlatformCollector(registry=registry)
        registry.register(StorageCollector(self.pool, settings, self.backlog, self.refresher))
        app = AppState(settings, self.pool, self.backlog, registry)
        host = settings.health_host
        self.servers = [
            _Server((host, settings.health_port), HealthHandler, app),
            _Server((host, settings.metrics_port), MetricsHandler, app),
        ]
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        # wait=False: a database that is down at start is reported by /health, not fatal.
        self.pool.open(wait=False)
        self.refresher.start()
        for server in self.servers:
            thread = threading.Thread(target=server.serve_forever, name=f"http-{server.server_port}",
                                      kwargs={"poll_interval": 0.2})
            thread.start()
            self._threads.append(thread)
        host = self.settings.health_host
        log.info(
            "serving /health on http://%s:%d and /metrics on http://%s:%d (database %s)",
            host, self.servers[0].server_port, host, self.servers[1].server_port,
            self.settings.redacted_database_url,
        )

    def stop(self) -> None:
        """Stop accepting, let in-flight requests finish, close the pool."""
        for server in self.servers:
            server.shutdown()  # serve_forever returns; no new connection is accepted
        for server in self.servers:
            server.server_close()  # closes the socket, joins request threads
        for thread in self._threads:
            thread.join()
        self.refresher.stop()
        self.pool.close(timeout=POOL_CLOSE_SECONDS)
        log.info("stopped")


def serve(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT; returns the exit code (0)."""
    stopping = threading.Event()

    def on_signal(signum, _frame) -> None:
        log.info("%s received, shutting down", signal.Signals(signum).name)
        stopping.set()

    service = Service(settings)  # binds both ports: a port in use fails here
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        service.start()
        while not stopping.wait(1.0):
            pass
    finally:
        service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
