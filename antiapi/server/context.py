"""Per-request log context (request id, model, account) carried by a contextvar.

Every log line of the ``antiapi`` loggers shows ``[<request id> model=<m> account=<a>]`` through
:class:`RequestContextFilter`. The value lives in a :class:`contextvars.ContextVar`, so concurrent
requests (each its own task) never see each other's context.
"""

from __future__ import annotations

import contextvars
import logging

request_ctx: contextvars.ContextVar[str] = contextvars.ContextVar("antiapi_request", default="-")


def set_request_context(request_id: str, model: str | None = None, account: str | None = None) -> None:
    """Set the current task's log context (request id, and model / account when known)."""
    text = request_id
    if model:
        text += f" model={model}"
    if account:
        text += f" account={account}"
    request_ctx.set(text)


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request = request_ctx.get()
        return True
