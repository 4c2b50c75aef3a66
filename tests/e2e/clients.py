"""Uniform adapters over the official SDKs: one call shape for every client dialect.

Each adapter sends a conversation through antiapi with the real SDK (streamed or not) and
returns what the SDK surfaced: text, tool calls, reasoning and the stop reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import anthropic
import openai

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@dataclass
class Result:
    text: str = ""
    tool_calls: list[tuple[str, str, dict]] = field(default_factory=list)  # (id, name, args)
    reasoning: str = ""
    stop: str = ""
    #: raw assistant turn as the client would send it back
    assistant: object = None
    usage: dict = field(default_factory=dict)


class ChatClient:
    dialect = "openai_chat"

    def __init__(self, url: str, key: str = "anything") -> None:
        self.sdk = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)

    def user(self, text: str, image_b64: str | None = None) -> dict:
        if image_b64:
            return {"role": "user", "content": [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image_b64}"}},
            ]}
        return {"role": "user", "content": text}

    def tool_results(self, calls: list[tuple[str, str, dict]], outputs: list[str]) -> list[dict]:
        return [{"role": "tool", "tool_call_id": c[0], "content": o} for c, o in zip(calls, outputs)]

    def send(self, model: str, messages: list, *, stream: bool, tools: bool = False, system: str | None = None, **kw) -> Result:
        msgs = ([{"role": "system", "content": system}] if system else []) + messages
        extra = {"tools": [{"type": "function", "function": WEATHER_TOOL}]} if tools else {}
        if stream:
            text, calls, reasoning, stop, usage = "", {}, "", "", {}
            for chunk in self.sdk.chat.completions.create(
                model=model, messages=msgs, stream=True, stream_options={"include_usage": True}, **extra, **kw
            ):
                if chunk.usage:
                    usage = chunk.usage.model_dump()
                for ch in chunk.choices:
                    d = ch.delta
                    text += d.content or ""
                    reasoning += getattr(d, "reasoning_content", None) or ""
                    for tc in d.tool_calls or []:
                        slot = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                        slot["id"] = tc.id or slot["id"]
                        if tc.function and tc.function.name:
                            slot["name"] = tc.function.name
                        if tc.function and tc.function.arguments:
                            slot["args"] += tc.function.arguments
                    stop = ch.finish_reason or stop
            tcs = [(c["id"], c["name"], json.loads(c["args"] or "{}")) for _, c in sorted(calls.items())]
        else:
            r = self.sdk.chat.completions.create(model=model, messages=msgs, **extra, **kw)
            m = r.choices[0].message
            text, stop = m.content or "", r.choices[0].finish_reason
            reasoning = getattr(m, "reasoning_content", None) or ""
            tcs = [(t.id, t.function.name, json.loads(t.function.arguments or "{}")) for t in m.tool_calls or []]
            usage = r.usage.model_dump() if r.usage else {}
        assistant = {"role": "assistant", "content": text or None}
        if tcs:
            assistant["tool_calls"] = [
                {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}} for i, n, a in tcs
            ]
        return Result(text, tcs, reasoning, stop, assistant, usage)


class ResponsesClient:
    dialect = "openai_responses"

    def __init__(self, url: str, key: str = "anything") -> None:
        self.sdk = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)

    def user(self, text: str, image_b64: str | None = None) -> dict:
        content = [{"type": "input_text", "text": text}]
        if image_b64:
            content.append({"type": "input_image", "image_url": f"data:image/png;base64,{image_b64}"})
        return {"role": "user", "content": content}

    def tool_results(self, calls, outputs) -> list[dict]:
        return [{"type": "function_call_output", "call_id": c[0], "output": o} for c, o in zip(calls, outputs)]

    def send(self, model: str, messages: list, *, stream: bool, tools: bool = False, system: str | None = None, **kw) -> Result:
        extra = {"tools": [{"type": "function", **WEATHER_TOOL}]} if tools else {}
        if system:
            extra["instructions"] = system
        if stream:
            final = None
            text = ""
            with self.sdk.responses.stream(model=model, input=messages, **extra, **kw) as s:
                for ev in s:
                    if ev.type == "response.output_text.delta":
                        text += ev.delta
                final = s.get_final_response()
            resp = final
            assert resp.output_text == text
        else:
            resp = self.sdk.responses.create(model=model, input=messages, **extra, **kw)
        calls = [(o.call_id, o.name, json.loads(o.arguments or "{}")) for o in resp.output if o.type == "function_call"]
        reasoning = "".join(
            s.text for o in resp.output if o.type == "reasoning" for s in (o.summary or [])
        )
        assistant = [o.model_dump(exclude_none=True) for o in resp.output]
        stop = resp.status
        return Result(resp.output_text, calls, reasoning, stop, assistant, resp.usage.model_dump() if resp.usage else {})


class AnthropicClient:
    dialect = "anthropic"

    def __init__(self, url: str, key: str = "anything") -> None:
        self.sdk = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0)

    def user(self, text: str, image_b64: str | None = None) -> dict:
        if image_b64:
            return {"role": "user", "content": [
                {"type": "text", "text": text},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image_b64}},
            ]}
        return {"role": "user", "content": text}

    def tool_results(self, calls, outputs) -> list[dict]:
        return [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": c[0], "content": o} for c, o in zip(calls, outputs)
        ]}]

    def send(self, model: str, messages: list, *, stream: bool, tools: bool = False, system: str | None = None, **kw) -> Result:
        extra = {"tools": [{"name": WEATHER_TOOL["name"], "description": WEATHER_TOOL["description"],
                            "input_schema": WEATHER_TOOL["parameters"]}]} if tools else {}
        if system:
            extra["system"] = system
        kw.setdefault("max_tokens", 1024)
        if stream:
            with self.sdk.messages.stream(model=model, messages=messages, **extra, **kw) as s:
                for _ in s:
                    pass
                msg = s.get_final_message()
        else:
            msg = self.sdk.messages.create(model=model, messages=messages, **extra, **kw)
        text = "".join(b.text for b in msg.content if b.type == "text")
        reasoning = "".join(b.thinking for b in msg.content if b.type == "thinking")
        calls = [(b.id, b.name, dict(b.input)) for b in msg.content if b.type == "tool_use"]
        assistant = {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]}
        return Result(text, calls, reasoning, msg.stop_reason, assistant, msg.usage.model_dump())


CLIENTS = {"openai_chat": ChatClient, "openai_responses": ResponsesClient, "anthropic": AnthropicClient}
