"""Helpers shared by every dialect translator (pure).

Tool-name and call-id normalisation with reverse maps, JSON repair for truncated tool
arguments, reasoning effort <-> thinking budget buckets, data-URL handling, id minting.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid

import msgspec

_json_decode = msgspec.json.decode

# ----------------------------------------------------------------------------- names / ids

_OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_BAD_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_BAD_GEMINI_CHARS = re.compile(r"[^a-zA-Z0-9_.:-]")
_ANTHROPIC_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def _short_hash(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()[:8]


def normalize_tool_name(name: str, names: dict[str, str], *, gemini: bool = False) -> str:
    """Return a name the upstream accepts; record ``new -> original`` in ``names`` if changed.

    OpenAI/Anthropic: ``^[a-zA-Z0-9_-]{1,64}$``. Gemini: starts with a letter or underscore,
    ``[a-zA-Z0-9_.:-]``, at most 64. Long names become a 55-char prefix + ``_`` + 8 hex.
    """
    if not name:
        new = "tool_unnamed"
    elif gemini:
        new = _BAD_GEMINI_CHARS.sub("_", name)
        if not (new[0].isalpha() or new[0] == "_"):
            new = "_" + new
    else:
        new = _BAD_NAME_CHARS.sub("_", name)
    if len(new) > 64:
        new = new[:55] + "_" + _short_hash(name)
    if new != name:
        names[new] = name
    return new


def restore(value: str, mapping: dict[str, str]) -> str:
    return mapping.get(value, value)


def normalize_call_id(call_id: str, ids: dict[str, str], *, max_len: int = 64) -> str:
    """Make a tool-call id match ``^[a-zA-Z0-9_-]+$`` and fit ``max_len``; deterministic."""
    if not call_id:
        return call_id
    new = call_id if _ANTHROPIC_ID.match(call_id) else _BAD_NAME_CHARS.sub("_", call_id)
    if len(new) > max_len:
        new = new[: max_len - 9] + "_" + _short_hash(call_id)
    if new != call_id:
        ids[new] = call_id
    return new


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


# ----------------------------------------------------------------------------- JSON repair


def repair_json_object(text: str) -> str:
    """Best effort: turn possibly truncated JSON text into a JSON object text.

    Empty -> "{}". Valid object -> unchanged. Truncated -> close open strings/brackets.
    Anything else that still does not parse as an object -> ``{"_raw": text}``.
    """
    if not text or not text.strip():
        return "{}"
    try:
        val = _json_decode(text)
        if isinstance(val, dict):
            return text
        return msgspec.json.encode({"_raw": text}).decode()
    except msgspec.DecodeError:
        pass
    stack: list[str] = []
    in_str = False
    esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    fixed = text
    if esc:
        fixed = fixed[:-1]
    if in_str:
        fixed += '"'
    fixed = fixed.rstrip().rstrip(",")
    if fixed.endswith(":"):
        fixed += "null"
    fixed += "".join(reversed(stack))
    try:
        val = _json_decode(fixed)
        if isinstance(val, dict):
            return fixed
    except msgspec.DecodeError:
        pass
    return msgspec.json.encode({"_raw": text}).decode()


def parse_arguments(text: str) -> dict:
    """Tool-call arguments JSON text -> dict (repairing; never raises)."""
    val = _json_decode(repair_json_object(text))
    return val if isinstance(val, dict) else {"_raw": text}


# ----------------------------------------------------------------------------- reasoning

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")

_EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576, "xhigh": 32000}


def budget_to_effort(budget: int | None) -> str:
    """Anthropic thinking budget -> OpenAI effort (<=2048 low, <=12288 medium, else high)."""
    if budget is None:
        return "medium"
    if budget <= 0:
        return "none"
    if budget <= 2048:
        return "low"
    if budget <= 12288:
        return "medium"
    return "high"


def effort_to_budget(effort: str | None) -> int | None:
    """OpenAI effort -> Anthropic budget_tokens (None = thinking off)."""
    if effort is None:
        return _EFFORT_BUDGET["medium"]
    if effort in ("none",):
        return None
    return _EFFORT_BUDGET.get(effort, _EFFORT_BUDGET["medium"])


# ----------------------------------------------------------------------------- data URLs

_DATA_URL = re.compile(r"^data:([^;,]+)?(;base64)?,(.*)$", re.S)


def split_data_url(url: str) -> tuple[str | None, str] | None:
    """``data:image/png;base64,AAA`` -> ("image/png", "AAA"); None if not a data URL."""
    m = _DATA_URL.match(url)
    if not m:
        return None
    media, b64, payload = m.group(1), m.group(2), m.group(3)
    if not b64:
        payload = base64.b64encode(payload.encode()).decode()
    return media, payload


def data_url(media_type: str | None, data: str) -> str:
    return f"data:{media_type or 'application/octet-stream'};base64,{data}"


_OUTPUT_LIMIT_PATTERNS = (
    # OpenAI: "max_tokens is too large: 128000. This model supports at most 32768 completion tokens, ..."
    re.compile(r"supports at most (\d+) (?:completion|output) tokens", re.IGNORECASE),
    # Anthropic: "max_tokens: 128000 > 64000, which is the maximum allowed number of output tokens for ..."
    re.compile(r"max_tokens: \d+ > (\d+), which is the maximum allowed", re.IGNORECASE),
    # OpenAI-compatible servers: "`max_completion_tokens` ... expected a value <= 12288, but got 32000"
    re.compile(r"max(?:_completion)?_tokens.*?expected a value <= (\d+)", re.IGNORECASE | re.DOTALL),
)


def output_limit_from_error(message: str) -> int | None:
    """The most output tokens an upstream accepts, read from its "max_tokens too large" 400 message;
    ``None`` when the message is about something else."""
    for pattern in _OUTPUT_LIMIT_PATTERNS:
        m = pattern.search(message or "")
        if m:
            n = int(m.group(1))
            return n if n > 0 else None
    return None
