"""A real admin server for TUI tests: Litestar (admin_router + FakeBackend) under uvicorn in a
background thread, on an ephemeral 127.0.0.1 port."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn
from litestar import Litestar

from antiapi.server.admin import admin_openapi_config, admin_router, web_handlers
from tests.tui.fakes import FakeBackend

TOKEN = "test-admin-token-0123456789"


class AdminServer:
    def __init__(self, backend: FakeBackend | None = None, token: str = TOKEN, *, status_interval: float = 0.5) -> None:
        self.backend = backend or FakeBackend()
        self.token = token
        self.app = Litestar(
            [admin_router(self.backend, token, status_interval=status_interval, keepalive=5.0), *web_handlers(None)],
            openapi_config=admin_openapi_config("0.1.0"),
        )
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.backend.url = self.url
        self._server = uvicorn.Server(uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1,
        ))
        self._thread = threading.Thread(target=self._run, name="admin-server", daemon=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.backend.loop = loop
        loop.run_until_complete(self._server.serve(sockets=[self._sock]))
        loop.close()

    def start(self) -> "AdminServer":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("admin test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()
