"""Input-token estimate for upstreams without a count endpoint (pure).

Documented heuristic (docs/configuration.md, "count_tokens"): about 4 characters per token over
everything the model reads — system, every message part, tool names, descriptions and JSON
schemas — plus a per-message overhead of 4 tokens and a fixed 1,600 tokens per image (about
what a ~1 megapixel image costs at Anthropic and OpenAI). Never fails, never needs the network.
"""

from __future__ import annotations

import msgspec

from antiapi.translate import ir

_enc = msgspec.json.encode
IMAGE_TOKENS = 1600
MESSAGE_OVERHEAD = 4
TOOL_OVERHEAD = 8


def _chars_to_tokens(n: int) -> int:
    return (n + 3) // 4


def estimate_input_tokens(req: ir.Request) -> int:
    chars = 0
    extra = 0
    for t in req.system:
        chars += len(t.text)
    for msg in req.messages:
        extra += MESSAGE_OVERHEAD
        for p in msg.content:
            if isinstance(p, ir.TextPart):
                chars += len(p.text)
            elif isinstance(p, ir.ImagePart):
                extra += IMAGE_TOKENS
            elif isinstance(p, ir.DocumentPart):
                chars += len(p.data or "") * 3 // 4 // 2  # rough: decoded bytes / 2
            elif isinstance(p, ir.ToolCallPart):
                chars += len(p.name) + len(p.arguments)
            elif isinstance(p, ir.ToolResultPart):
                for c in p.content:
                    if isinstance(c, ir.TextPart):
                        chars += len(c.text)
                    else:
                        extra += IMAGE_TOKENS
            elif isinstance(p, ir.ReasoningPart):
                chars += len(p.text)
            elif isinstance(p, ir.RawPart):
                chars += len(_enc(p.data))
    for tool in req.tools:
        extra += TOOL_OVERHEAD
        chars += len(tool.name) + len(tool.description or "") + len(_enc(tool.parameters))
    return _chars_to_tokens(chars) + extra
