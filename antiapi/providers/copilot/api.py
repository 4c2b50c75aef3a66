"""Copilot API specifics that need no I/O: error answers -> typed errors, who initiated a request
(``X-Initiator``), whether it carries images (``Copilot-Vision-Request``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from antiapi.errors import ErrorKind, LimitReached, ProviderError, UpstreamHTTPError, kind_for_status
from antiapi.providers.copilot.quota import parse_retry_after

_KEEP_HEADERS = ("retry-after", "x-ratelimit-exceeded")


def _decode(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        return None


def _read(obj: Any) -> tuple[str | None, str | None, str | None]:
    """(message, code, type) from ``{"error":{…}}`` or a flat ``{"message","code","type"}``."""
    if not isinstance(obj, dict):
        return None, None, None
    e = obj.get("error")
    src = e if isinstance(e, dict) else obj
    msg = src.get("message")
    code = src.get("code")
    typ = src.get("type")
    if isinstance(e, str) and not isinstance(msg, str):
        msg = e
    return (
        msg if isinstance(msg, str) and msg else None,
        str(code) if isinstance(code, (str, int)) and not isinstance(code, bool) and code != "" else None,
        typ if isinstance(typ, str) else None,
    )


def copilot_error_parser(
    name: str, *, reset_hint: Callable[[], float | None] = lambda: None, clock: Callable[[], float] = time.time
) -> Callable[[int, Mapping[str, str], bytes], ProviderError]:
    """Errors of the Copilot API (chat/completions, responses, models) as typed errors.

    402 ``quota_exceeded`` -> :class:`LimitReached` (``resets_at`` from ``retry-after`` or the known
    quota reset date); 429 -> retryable RATE_LIMIT with ``retry_after``; 503 -> OVERLOADED; the
    plain-text 401 ``unauthorized: token expired`` -> AUTHENTICATION (the provider refreshes the
    token and retries once).
    """

    def parse(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        now = clock()
        obj = _decode(body)
        msg, code, typ = _read(obj)
        if msg is None:
            text = body.decode("utf-8", errors="replace").strip()
            msg = text[:500] if text else f"HTTP {status} with no error message"
        ra = parse_retry_after(headers.get("retry-after"), now)
        keep = {h: headers[h] for h in _KEEP_HEADERS if headers.get(h)}
        low = msg.lower()
        if status == 402 or code == "quota_exceeded":
            resets = now + ra if ra else reset_hint()
            return LimitReached(
                f"{name}: the Copilot quota of this account is used up ({msg})",
                resets_at=resets, retry_after=ra, code="quota_exceeded", headers=keep,
            )
        if status == 429:
            return UpstreamHTTPError(
                f"{name}: rate limited by Copilot: {msg}", kind=ErrorKind.RATE_LIMIT, status=429,
                code=code or "rate_limit_exceeded", retry_after=ra, headers=keep,
            )
        if status == 401:
            return UpstreamHTTPError(f"{name}: Copilot refused the token: {msg}", kind=ErrorKind.AUTHENTICATION,
                                     status=401, code=code or "token_expired")
        if status == 400 and "editor-version" in low:
            return UpstreamHTTPError(
                f"{name}: Copilot refused antiapi's editor headers ({msg}); set options.editor_version "
                "for this provider to a current editor version", kind=ErrorKind.API_ERROR, status=502,
                code="editor_version",
            )
        if status == 466:
            return UpstreamHTTPError(
                f"{name}: Copilot says this client version is no longer supported ({msg}); set "
                "options.editor_version / options.editor_plugin_version", kind=ErrorKind.API_ERROR, status=502,
            )
        if status == 503:
            return UpstreamHTTPError(f"{name}: Copilot is overloaded: {msg}", kind=ErrorKind.OVERLOADED, status=503,
                                     code=code, retry_after=ra, headers=keep)
        kind = kind_for_status(status)
        if status == 400 and typ == "rate_limit_error":
            kind = ErrorKind.RATE_LIMIT
        return UpstreamHTTPError(f"{name}: {msg}", kind=kind, status=status, code=code, retry_after=ra, headers=keep)

    return parse


def initiator(messages: Any) -> str:
    """``user`` when the last message is a real user turn, else ``agent`` (tool results, the
    continuation after them, assistant prefill). Only ``user`` requests consume a premium request.

    A user message right after ``tool`` messages is the rest of a tool-result turn (an Anthropic
    user turn with tool_result blocks plus text, or images taken out of tool results), not a new
    question: ``agent``.
    """
    if not isinstance(messages, list) or not messages:
        return "user"
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return "agent"
    if len(messages) >= 2 and isinstance(messages[-2], dict) and messages[-2].get("role") == "tool":
        return "agent"
    return "user"


def has_images(messages: Any) -> bool:
    if not isinstance(messages, list):
        return False
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            for p in content:
                if isinstance(p, dict) and p.get("type") in ("image_url", "input_image", "image"):
                    return True
    return False
