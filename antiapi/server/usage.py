"""Per-request usage records, written off the hot path.

Every request (failed ones included) produces exactly one :class:`UsageRecord`. Records are kept
in a bounded in-memory ring (``recent``) for the admin API and persisted in the background: into
the state store's ``usage`` table when one is attached (the store's writer thread batches them),
otherwise appended to ``usage.jsonl``. :meth:`UsageLog.aclose` flushes what is pending on a clean
shutdown.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from pathlib import Path

import msgspec

log = logging.getLogger("antiapi.usage")


class UsageRecord(msgspec.Struct, omit_defaults=True):
    time: float
    request_id: str
    endpoint: str
    client_dialect: str
    #: the model the client asked for ("" when it named none)
    model: str
    status: int
    latency_ms: float
    stream: bool = False
    #: the client key that authorised the request (None until client keys exist)
    client_key: str | None = None
    #: what the request was routed as when that differs from ``model`` (default model,
    #: background mapping) — a model id or a flow name
    target: str | None = None
    #: the account (provider name) that served the request, or failed last
    provider: str | None = None
    provider_type: str | None = None
    #: the signed-in account label of that provider, if any
    account: str | None = None
    upstream_model: str | None = None
    upstream_dialect: str | None = None
    ttft_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    error: str | None = None
    #: every entry tried before the one that served, with why it failed ("a/gpt-4.1: 429 rate_limit")
    attempts: list[str] = msgspec.field(default_factory=list)
    #: every entry considered, in order: tried, skipped (cooling down / disabled / unsupported), served
    route: list[str] = msgspec.field(default_factory=list)


_enc = msgspec.json.Encoder()


class UsageLog:
    def __init__(self, path: Path | None, *, keep: int = 5000, max_file_bytes: int = 64 * 1024 * 1024) -> None:
        self.path = path
        self.recent: collections.deque[UsageRecord] = collections.deque(maxlen=keep)
        self._pending: list[UsageRecord] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._max = max_file_bytes
        self.count = 0
        self.store = None
        #: called with every record on the event loop's thread (e.g. the admin event stream);
        #: must not block
        self.listeners: list = []

    def attach(self, store) -> None:
        """Persist records in ``store`` (an :class:`antiapi.store.Store`) instead of the JSONL file."""
        self.store = store

    def start(self) -> None:
        if self.path is not None and self.store is None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._writer())

    def record(self, rec: UsageRecord) -> None:
        self.count += 1
        self.recent.append(rec)
        if self.store is not None:
            self.store.add_usage(rec)  # a queue put: the store's writer thread does the SQL
        elif self.path is not None:
            self._pending.append(rec)
            self._wake.set()
        for fn in self.listeners:
            try:
                fn(rec)
            except Exception:  # a listener's bug must not fail the request
                log.exception("usage listener failed")

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0.2)  # batch bursts
            await asyncio.to_thread(self._flush)

    def _flush(self) -> None:
        if not self._pending or self.path is None:
            return
        batch, self._pending = self._pending, []
        data = b"".join(_enc.encode(r) + b"\n" for r in batch)
        try:
            if self.path.exists() and self.path.stat().st_size > self._max:
                os.replace(self.path, self.path.with_suffix(".jsonl.1"))
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as e:
            log.error("could not write usage records to %s: %s", self.path, e)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self.store is not None:
            await self.store.flush()
        else:
            self._flush()
