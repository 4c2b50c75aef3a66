"""Session affinity: keep one conversation on one account (pure, bounded LRU with a TTL).

Keeping a conversation on one account keeps the upstream's prompt cache warm. Keys come from
the client (``X-Claude-Code-Session-Id``, Codex's ``session_id`` / ``prompt_cache_key``, OpenAI
``user``), combined with the route so one session may use different accounts for different flows.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

__all__ = ["Affinity"]


class Affinity:
    def __init__(self, clock: Callable[[], float], *, ttl: float = 3600.0, size: int = 10_000) -> None:
        self.clock = clock
        self.ttl = ttl
        self.size = size
        self._d: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._d)

    def get(self, key: str) -> str | None:
        item = self._d.get(key)
        if item is None:
            return None
        account, expires = item
        if expires <= self.clock():
            del self._d[key]
            return None
        self._d.move_to_end(key)
        return account

    def put(self, key: str, account: str) -> None:
        d = self._d
        d[key] = (account, self.clock() + self.ttl)
        d.move_to_end(key)
        while len(d) > self.size:
            d.popitem(last=False)

    def drop(self, key: str) -> None:
        self._d.pop(key, None)
