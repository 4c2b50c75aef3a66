"""A deliberately cheap OpenAI/Anthropic-shaped upstream for the benchmark.

Raw asyncio (uvloop when installed) HTTP/1.1 with keep-alive. Every answer is canned bytes built
once at start-up, so the mock is never the bottleneck. It validates next to nothing:

  POST .../chat/completions   non-stream JSON, or (``"stream": true``) 50 SSE chunks + [DONE]
  POST .../messages           Anthropic JSON, or an Anthropic SSE stream with 50 text deltas
  GET  /health, .../models    small JSON

A request whose body contains ``"slow"`` (the model name used by the 1,000-stream scenario) gets
a long stream instead: the first chunk at once, then one chunk a second for ``--slow-seconds``,
then the end of the stream.

Run: ``python bench/mock_upstream.py --port 0`` prints ``PORT <n>`` on stdout once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys

N_CHUNKS = 50
_CL = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.I)
_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.I)


def _http(status: str, ctype: str, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n"
        "connection: keep-alive\r\n\r\n"
    ).encode() + body


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
    b"connection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n"
)
CHUNK_END = b"0\r\n\r\n"


def _dump(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _oai_chunk(model: str, delta: dict, finish=None, usage=None) -> bytes:
    obj = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        obj["usage"] = usage
    return b"data: " + _dump(obj) + b"\n\n"


USAGE = {"prompt_tokens": 12, "completion_tokens": N_CHUNKS, "total_tokens": 12 + N_CHUNKS}


def build_chat_json(model: str) -> bytes:
    return _http(
        "200 OK",
        "application/json",
        _dump(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": 1700000000,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Hello! I am a mock upstream answering quickly."},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 12, "completion_tokens": 11, "total_tokens": 23},
            }
        ),
    )


def build_chat_stream(model: str) -> bytes:
    parts = [STREAM_HEAD, _chunk(_oai_chunk(model, {"role": "assistant", "content": ""}))]
    for i in range(N_CHUNKS):
        parts.append(_chunk(_oai_chunk(model, {"content": f" tok{i}"})))
    parts.append(_chunk(_oai_chunk(model, {}, "stop", USAGE)))
    parts.append(_chunk(b"data: [DONE]\n\n"))
    parts.append(CHUNK_END)
    return b"".join(parts)


def _ant_event(name: str, obj: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _dump(obj) + b"\n\n"


def build_messages_json(model: str) -> bytes:
    return _http(
        "200 OK",
        "application/json",
        _dump(
            {
                "id": "msg_bench",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": "Hello! I am a mock upstream answering quickly."}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 12, "output_tokens": 11},
            }
        ),
    )


def build_messages_stream(model: str) -> bytes:
    ev = [
        _ant_event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_bench", "type": "message", "role": "assistant", "model": model, "content": [],
                    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 1},
                },
            },
        ),
        _ant_event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    for i in range(N_CHUNKS):
        ev.append(_ant_event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f" tok{i}"}}))
    ev.append(_ant_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
    ev.append(_ant_event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": N_CHUNKS}}))
    ev.append(_ant_event("message_stop", {"type": "message_stop"}))
    return STREAM_HEAD + b"".join(_chunk(e) for e in ev) + CHUNK_END


HEALTH = _http("200 OK", "application/json", b'{"status":"ok"}')
MODELS = _http("200 OK", "application/json", b'{"object":"list","data":[{"id":"m","object":"model","owned_by":"bench"},{"id":"slow","object":"model","owned_by":"bench"}]}')
NOT_FOUND = _http("404 Not Found", "application/json", b'{"error":{"message":"not found","type":"invalid_request_error"}}')


class Canned:
    def __init__(self) -> None:
        self.chat_json = build_chat_json("m")
        self.chat_stream = build_chat_stream("m")
        self.msg_json = build_messages_json("m")
        self.msg_stream = build_messages_stream("m")
        self.slow_first = STREAM_HEAD + _chunk(_oai_chunk("slow", {"role": "assistant", "content": ""}))
        self.slow_mid = _chunk(_oai_chunk("slow", {"content": " tick"}))
        self.slow_end = _chunk(_oai_chunk("slow", {}, "stop", USAGE)) + _chunk(b"data: [DONE]\n\n") + CHUNK_END


class MockProtocol(asyncio.Protocol):
    __slots__ = ("transport", "buf", "canned", "slow_seconds", "busy", "loop")

    def __init__(self, canned: Canned, slow_seconds: float) -> None:
        self.canned = canned
        self.slow_seconds = slow_seconds
        self.buf = bytearray()
        self.busy = False  # a slow stream is in progress on this connection
        self.transport = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while not self.busy:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end])
            m = _CL.search(head)
            n = int(m.group(1)) if m else 0
            total = end + 4 + n
            if len(buf) < total:
                return
            body = bytes(buf[end + 4 : total])
            del buf[:total]
            self.handle(head, body)

    def handle(self, head: bytes, body: bytes) -> None:
        line_end = head.find(b"\r\n")
        first = head[: line_end if line_end >= 0 else len(head)]
        parts = first.split(b" ")
        method = parts[0]
        path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b"/"
        c = self.canned
        t = self.transport
        if method == b"POST" and path.endswith(b"/chat/completions"):
            stream = b'"stream":true' in body or b'"stream": true' in body
            if stream and b'"slow"' in body:
                self.start_slow()
                return
            t.write(c.chat_stream if stream else c.chat_json)
        elif method == b"POST" and path.endswith(b"/messages"):
            stream = b'"stream":true' in body or b'"stream": true' in body
            t.write(c.msg_stream if stream else c.msg_json)
        elif method == b"GET" and path == b"/health":
            t.write(HEALTH)
        elif method == b"GET" and path.endswith(b"/models"):
            t.write(MODELS)
        else:
            t.write(NOT_FOUND)
        if _CLOSE.search(head):
            t.close()

    # -- the 1,000-stream scenario: first chunk now, one a second, bounded by slow_seconds
    def start_slow(self) -> None:
        self.busy = True
        self.transport.write(self.canned.slow_first)
        ticks = max(1, int(round(self.slow_seconds)))
        interval = self.slow_seconds / ticks
        self.loop.call_later(interval, self.slow_tick, ticks - 1, interval)

    def slow_tick(self, left: int, interval: float) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        if left <= 0:
            t.write(self.canned.slow_end)
            self.busy = False
            if self.buf:
                self.data_received(b"")
            return
        t.write(self.canned.slow_mid)
        self.loop.call_later(interval, self.slow_tick, left - 1, interval)

    def connection_lost(self, exc) -> None:
        self.transport = None


async def main_async(args) -> None:
    canned = Canned()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: MockProtocol(canned, args.slow_seconds), args.host, args.port, backlog=4096, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # bounded: never outlive the benchmark by more than --max-seconds
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.max_seconds)
    except asyncio.TimeoutError:
        pass
    server.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--slow-seconds", type=float, default=10.0)
    p.add_argument("--max-seconds", type=float, default=3600.0)
    args = p.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("mock_upstream: loopback only")
    try:
        import uvloop  # type: ignore
    except ImportError:
        asyncio.run(main_async(args))
    else:
        uvloop.run(main_async(args))
    os._exit(0)


if __name__ == "__main__":
    main()
