"""``/healthz`` (the main loop is alive), ``/readyz`` (every namespace listed), ``/metrics`` (Prometheus)."""

from __future__ import annotations

import http.server
import threading
import time

from prometheus_client.exposition import choose_encoder

from spark_secrets.renew.metrics import Metrics, registry_for

#: A main loop silent for longer than this is reported stalled.
STALL_S = 60.0


class HealthServer:
    """A small threaded HTTP server beside the service (probes and scrapes, never secret bytes)."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        registry = registry_for(metrics)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                if self.path == "/healthz":
                    ok = time.monotonic() - metrics.heartbeat < STALL_S
                    self._send(200 if ok else 503, b"ok\n" if ok else b"main loop stalled\n")
                elif self.path == "/readyz":
                    self._send(200 if metrics.ready else 503, b"ready\n" if metrics.ready else b"listing\n")
                elif self.path == "/metrics":
                    encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                    self._send(200, encoder(registry), content_type)
                else:
                    self._send(404, b"not found\n")

            def _send(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name="health", daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
