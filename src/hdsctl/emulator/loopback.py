"""What every HTTP server of the local platform shares: bound to loopback, served on a thread,
polled for shutdown every 50 ms (the standard library's 0.5 s made each stop slow), and the
hooks the tests steer a FHIR service with."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    """`with Service() as service:` — `service.url` reaches it."""

    def __init__(self, handler, host: str = "127.0.0.1", port: int = 0):
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class FhirHooks:
    """`fail_next(status, count)` answers the next requests with an error; `requests` and
    `statuses` record what was asked and answered."""

    def __init__(self):
        self.requests: list[tuple[str, str]] = []
        self.statuses: list[int] = []  # of every answer, in order
        self._failures: list[int] = []

    def fail_next(self, status: int, count: int = 1) -> None:
        self._failures += [status] * count


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no access log (tests and the CLI read what was asked from the
    server's own records), and each answer sent at once."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        """Quiet."""

    def setup(self):
        super().setup()
        # Headers and body leave in two writes: without this, Nagle's algorithm and the client's
        # delayed ACK hold each answer for about 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class FhirHandler(QuietHandler):
    """A FHIR service's requests: `_serve(method)` answers each with `_reply`, which records the
    status on `hooks` (a FhirHooks)."""

    hooks: FhirHooks

    def _serve(self, method: str) -> None:
        raise NotImplementedError

    def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.hooks.statuses.append(status)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_DELETE(self):
        self._serve("DELETE")
