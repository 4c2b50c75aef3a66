"""Run antiapi for real (uvicorn on 127.0.0.1, ephemeral port) inside the test process."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from antiapi.config import load_config
from antiapi.providers.registry import build_providers
from antiapi.server.app import create_app
from antiapi.server.usage import UsageLog


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (nothing listens on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatewayServer:
    """antiapi built from a config file, served by uvicorn in a background thread."""

    def __init__(
        self, config_text: str, tmp: Path, env: dict[str, str] | None = None, prepare=None
    ) -> None:
        self.data_dir = tmp / "antiapi-data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if prepare is not None:  # e.g. write signed-in accounts' credentials before start
            prepare(self.data_dir)
        self.config_path = self.data_dir / "config.yaml"
        self.config_path.write_text(config_text)
        self.config = load_config(self.config_path, data_dir=self.data_dir, env=env or {})
        self.usage = UsageLog(self.data_dir / "usage.jsonl")
        self.providers = build_providers(self.config)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # the URL is known before the app starts, as `antiapi serve` passes it (a tunnel started
        # with the server needs the port)
        self.app = create_app(self.config, providers=self.providers, usage=self.usage, url=self.url)
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on", loop="asyncio")
        )
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def start(self) -> "GatewayServer":
        self._thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise RuntimeError("antiapi did not become healthy")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> "GatewayServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def records(self, at_least: int = 1, timeout: float = 3.0) -> list:
        """Usage records so far; waits (bounded) for ``at_least`` of them, since a stream's
        record is written when the server finishes the stream, just after the client's last byte."""
        deadline = time.monotonic() + timeout
        while len(self.usage.recent) < at_least and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.usage.recent)


def provider_config(kind: str, base_url: str, models: list[str], name: str | None = None, key: str = "test-key") -> str:
    """YAML for one provider serving ``models`` (client name == upstream name)."""
    name = name or kind
    lines = [
        "providers:",
        f"  {name}:",
        f"    type: {kind}",
        f"    base_url: {base_url}",
        f"    api_key: {key}",
        "models:",
    ]
    for m in models:
        lines += [f"  - name: {m}", f"    provider: {name}"]
    return "\n".join(lines) + "\n"
