"""Per-request log context (request id, model, account) carried by a contextvar."""

from __future__ import annotations

import contextvars
import logging

request_ctx: contextvars.ContextVar[str] = contextvars.ContextVar("antiapi_request", default="-")


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request = request_ctx.get()
        return True
