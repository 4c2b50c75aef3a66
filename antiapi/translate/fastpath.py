"""Same dialect in and out: forward bytes, change only the model name (pure).

Re-encoding a request can break Anthropic thinking signatures and drops fields a newer client
sends that we do not model, so the fast path never decodes-and-re-encodes a body: it edits the
top-level ``"model"`` value in place and leaves every other byte alone.
"""

from __future__ import annotations

import re

import msgspec


class RequestView(msgspec.Struct):
    """The few top-level fields routing needs, decoded without touching the rest."""

    model: str | None = None
    stream: bool | None = None


_view_decoder = msgspec.json.Decoder(RequestView)

# strings (with escapes) or structural characters
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]:,]')


def peek(body: bytes) -> RequestView:
    """Decode only ``model`` and ``stream``. Raises ``msgspec.DecodeError`` / ``ValidationError``."""
    return _view_decoder.decode(body)


def _top_level_model_span(body: bytes) -> tuple[int, int] | None:
    depth = 0
    expect_value = False
    last_key: bytes | None = None
    after_colon = False
    for m in _TOKENS.finditer(body):
        tok = m.group()
        c = tok[:1]
        if c == b'"':
            if depth == 1:
                if after_colon:
                    if expect_value:
                        return m.start(), m.end()
                    after_colon = False
                else:
                    last_key = tok
            continue
        if c == b"{" or c == b"[":
            depth += 1
            after_colon = False
        elif c == b"}" or c == b"]":
            depth -= 1
        elif c == b":" and depth == 1:
            after_colon = True
            expect_value = last_key == b'"model"'
        elif c == b",":
            after_colon = False
            expect_value = False
    return None


def rewrite_model(body: bytes, model: str) -> bytes:
    """Replace the top-level ``model`` string value; every other byte is kept."""
    span = _top_level_model_span(body)
    new = msgspec.json.encode(model)
    if span is None:
        # no model key (cannot happen after peek() succeeded) -> add one
        i = body.index(b"{") + 1
        sep = b"," if body[i:].strip()[:1] not in (b"}", b"") else b""
        return body[:i] + b'"model":' + new + sep + body[i:]
    start, end = span
    if body[start:end] == new:
        return body
    return body[:start] + new + body[end:]


def model_replacer(upstream: str, client: str):
    """A function that renames ``upstream`` to ``client`` in response bytes (``"model":"x"``)."""
    if upstream == client:
        return None
    pats = [
        (b'"model":' + msgspec.json.encode(upstream), b'"model":' + msgspec.json.encode(client)),
        (b'"model": ' + msgspec.json.encode(upstream), b'"model": ' + msgspec.json.encode(client)),
    ]

    def replace(data: bytes) -> bytes:
        for a, b in pats:
            if a in data:
                data = data.replace(a, b)
        return data

    return replace
