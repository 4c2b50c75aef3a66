"""Fixtures for the tunnel tests: the stand-in tools (standins.py) first on PATH."""

from __future__ import annotations

import json
import os

import pytest

from tests.tunnels.standins import make_bindir


@pytest.fixture
def bindir(tmp_path, monkeypatch):
    d = make_bindir(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}{os.environ.get('PATH', '')}")
    return d


class LocalServer:
    """A tiny HTTP server on an ephemeral 127.0.0.1 port, run in a thread; answers every request
    with ``handler(method, path, body) -> (status, dict)`` as JSON and records the requests."""

    def __init__(self, handler):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.requests.append(
                    {"method": self.command, "path": self.path, "client": self.client_address[0], "body": body}
                )
                status, obj = handler(self.command, self.path, body)
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _any

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def local_server():
    """``local_server(handler)`` starts a :class:`LocalServer`; all are stopped after the test."""
    servers: list[LocalServer] = []

    def start(handler):
        s = LocalServer(handler)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()
