"""A loopback HTTP server that serves video files the way a remote host would, for tests and benchmarks.

yt-dlp cannot reach TikTok here, so the yt-dlp source is exercised for real against
this server: yt-dlp's generic extractor downloads direct video URLs from it. Routes
can misbehave on purpose (answer the first requests with 503, wait before answering
so the client times out, serve text as ``video/mp4``), and the whole server can add
per-request latency and a per-connection bandwidth limit so that the server side
behaves like a remote host rather than a local disk.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    """What the server answers for one path.

    ``fail_with``: statuses answered, in order, to the first requests of this path
    (e.g. ``(503, 503)``), before the body is served. ``delay_s``: wait before
    answering each request (a host that hangs). ``truncate_at``: announce the whole
    body but send only this many bytes, then close (a connection dropped mid-download).
    ``trickle_s``: send the body one byte every this many seconds (a host that never
    times out a read but never finishes). ``started`` is set when a body starts.
    """

    body: bytes
    content_type: str = "video/mp4"
    fail_with: tuple[int, ...] = ()
    delay_s: float = 0.0
    truncate_at: int | None = None
    trickle_s: float = 0.0
    started: threading.Event = field(default_factory=threading.Event, repr=False)


class _Handler(BaseHTTPRequestHandler):
    server: _VideoHTTPServer
    # HTTP/1.0: one request per connection, so a client dropping an idle keep-alive
    # connection is not an error in the server's log.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
        """Quiet: the tests read the request counters instead of the access log."""

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, *, send_body: bool) -> None:
        host = self.server
        path = self.path.split("?", 1)[0]
        with host.lock:
            host.requests[path] += 1
            host.headers[path] = dict(self.headers.items())
            count = host.requests[path]
        route = host.routes.get(path)
        if host.stop.wait(host.latency_s + (route.delay_s if route else 0.0)):
            return
        if route is None:
            self._status_only(404)
            return
        if count <= len(route.fail_with):
            self._status_only(route.fail_with[count - 1])
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            if send_body:
                route.started.set()
                self._send_throttled(route.body[:route.truncate_at], route.trickle_s)
        except (BrokenPipeError, ConnectionResetError):
            # The client stopped reading (yt-dlp's generic extractor reads only the
            # start of a URL to sniff its type); that ends this answer.
            self.close_connection = True

    def _status_only(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_throttled(self, body: bytes, trickle_s: float = 0.0) -> None:
        if trickle_s:
            for offset in range(len(body)):
                self.wfile.write(body[offset:offset + 1])
                self.wfile.flush()
                if self.server.stop.wait(trickle_s):
                    return
            return
        rate = self.server.bytes_per_s
        if not rate:
            self.wfile.write(body)
            return
        chunk = max(1024, int(rate / 50))  # 50 writes a second: smooth enough, cheap enough
        started = time.monotonic()
        for offset in range(0, len(body), chunk):
            self.wfile.write(body[offset:offset + chunk])
            ahead = (offset + chunk) / rate - (time.monotonic() - started)
            if ahead > 0 and self.server.stop.wait(ahead):
                return


class _VideoHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, Route], latency_s: float, bytes_per_s: float | None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = routes
        self.latency_s = latency_s
        self.bytes_per_s = bytes_per_s
        self.requests: Counter[str] = Counter()
        self.headers: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()


@dataclass
class ServedVideos:
    """A running server: ``url(path)`` builds a URL, ``requests[path]`` counts requests seen,
    ``headers[path]`` holds the last request's headers."""

    base_url: str
    routes: dict[str, Route]
    requests: Counter[str]
    headers: dict[str, dict[str, str]]

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)


@contextmanager
def serve_videos(
    routes: dict[str, Route], *, latency_s: float = 0.0, bytes_per_s: float | None = None
) -> Iterator[ServedVideos]:
    """Serve ``routes`` (path -> :class:`Route`) on 127.0.0.1 on a free port until the block ends.

    Every request waits ``latency_s`` before its answer; bodies are sent at most at
    ``bytes_per_s`` per connection. Unknown paths get 404. Routes may be added while
    the server runs.
    """
    server = _VideoHTTPServer(routes, latency_s, bytes_per_s)
    thread = threading.Thread(target=server.serve_forever, name="video-server", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield ServedVideos(f"http://{host}:{port}", routes, server.requests, server.headers)
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join()
