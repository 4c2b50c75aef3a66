"""Load generator for the benchmark: asyncio (uvloop when installed) + httptools, raw keep-alive
HTTP/1.1 connections. Runs as its own process; reads a JSON spec from argv[1] and prints one JSON
result object on stdout.

Modes:
  closed   ``conns`` connections, each sending the next request as soon as the previous answer
           completes, for ``warmup`` + ``duration`` seconds; throughput and latency count the
           answers that completed inside the measured window.
  open     a fixed ``rate`` of requests per second for ``duration`` seconds (open loop: a request
           is sent on schedule on any idle connection, opening one if none is idle).
  streams  ``n`` connections at once, one (long) request each; reports time to first body byte
           and whether every stream completed.

A request succeeds when the status is 200 and, if ``expect`` is given, the last bytes of the body
contain it (``[DONE]`` / ``message_stop``: the stream really finished).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time

import httptools

perf = time.perf_counter


class RequestFailed(Exception):
    pass


class Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 client connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.fut: asyncio.Future | None = None
        self.status = 0
        self.t_first = 0.0
        self.tail = b""
        self.alive = False
        self.keep_alive = True

    # -- asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.alive = True
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(f"parse error: {e}")
            self.transport.close()

    def connection_lost(self, exc) -> None:
        self.alive = False
        self._fail("connection closed before the answer completed")

    # -- httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if not self.t_first:
            self.t_first = perf()
        t = self.tail + body
        self.tail = t[-64:] if len(t) > 64 else t

    def on_message_complete(self) -> None:
        if not self.t_first:
            self.t_first = perf()
        fut = self.fut
        if fut is not None and not fut.done():
            fut.set_result(perf())
        if not self.keep_alive:
            self.alive = False
            self.transport.close()

    def _fail(self, why: str) -> None:
        fut = self.fut
        if fut is not None and not fut.done():
            fut.set_exception(RequestFailed(why))

    # -- API
    def send(self, raw: bytes) -> tuple[float, asyncio.Future]:
        self.status = 0
        self.t_first = 0.0
        self.tail = b""
        self.fut = asyncio.get_running_loop().create_future()
        t0 = perf()
        self.transport.write(raw)
        return t0, self.fut


async def connect(host: str, port: int) -> Conn:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(Conn, host, port)
    return proto


def build_request(spec: dict) -> bytes:
    body = spec.get("body", "")
    body_b = body.encode() if isinstance(body, str) else json.dumps(body, separators=(",", ":")).encode()
    lines = [f"{spec.get('method', 'POST')} {spec['path']} HTTP/1.1", f"host: {spec['host']}:{spec['port']}"]
    for k, v in spec.get("headers", {}).items():
        lines.append(f"{k}: {v}")
    if body_b or spec.get("method", "POST") == "POST":
        lines.append(f"content-length: {len(body_b)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body_b


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def summary(lat: list[float]) -> dict:
    if not lat:
        return {"n": 0}
    return {
        "n": len(lat),
        "p50": pct(lat, 50),
        "p90": pct(lat, 90),
        "p99": pct(lat, 99),
        "max": max(lat),
        "mean": sum(lat) / len(lat),
    }


class Errors:
    def __init__(self) -> None:
        self.count = 0
        self.samples: list[str] = []

    def add(self, msg: str) -> None:
        self.count += 1
        if len(self.samples) < 5 and msg not in self.samples:
            self.samples.append(msg)


async def one(conn: Conn, raw: bytes, expect: bytes | None, timeout: float) -> tuple[float, float, float]:
    """Send one request; return (t_send, t_first_byte, t_done). Raises RequestFailed."""
    t0, fut = conn.send(raw)
    try:
        t_done = await asyncio.wait_for(fut, timeout)
    except asyncio.TimeoutError:
        conn.transport.close()
        raise RequestFailed(f"timeout after {timeout}s") from None
    if conn.status != 200:
        raise RequestFailed(f"HTTP {conn.status}: {conn.tail[-60:]!r}")
    if expect is not None and expect not in conn.tail:
        raise RequestFailed(f"stream did not finish (tail {conn.tail[-60:]!r})")
    return t0, conn.t_first, t_done


async def run_closed(spec: dict) -> dict:
    host, port = spec["host"], spec["port"]
    raw = build_request(spec)
    expect = spec.get("expect")
    expect_b = expect.encode() if expect else None
    conns, warmup, duration = spec["conns"], spec["warmup"], spec["duration"]
    timeout = spec.get("timeout", 30.0)
    lat: list[float] = []
    ttfb: list[float] = []
    errors = Errors()
    start = perf()
    m_start = start + warmup
    m_end = m_start + duration

    async def worker() -> None:
        conn: Conn | None = None
        while perf() < m_end:
            try:
                if conn is None or not conn.alive:
                    conn = await asyncio.wait_for(connect(host, port), timeout)
                t0, tf, td = await one(conn, raw, expect_b, timeout)
            except (RequestFailed, OSError, asyncio.TimeoutError) as e:
                if perf() >= m_start:
                    errors.add(str(e) or type(e).__name__)
                conn = None
                await asyncio.sleep(0.01)
                continue
            if m_start <= td <= m_end:  # completed inside the window (may have started before it)
                lat.append((td - t0) * 1000)
                ttfb.append((tf - t0) * 1000)
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    await asyncio.gather(*(worker() for _ in range(conns)))
    return {
        "mode": "closed",
        "requests": len(lat),
        "rps": len(lat) / duration,
        "latency_ms": summary(lat),
        "ttfb_ms": summary(ttfb),
        "errors": errors.count,
        "error_samples": errors.samples,
    }


async def run_open(spec: dict) -> dict:
    host, port = spec["host"], spec["port"]
    raw = build_request(spec)
    expect = spec.get("expect")
    expect_b = expect.encode() if expect else None
    rate, duration, warmup = spec["rate"], spec["duration"], spec.get("warmup", 1.0)
    timeout = spec.get("timeout", 30.0)
    idle: list[Conn] = []
    lat: list[float] = []
    errors = Errors()
    lag: list[float] = []

    # pre-open a few connections and warm them (and the server) up
    for _ in range(spec.get("preopen", 4)):
        idle.append(await connect(host, port))
    w_end = perf() + warmup
    while perf() < w_end:
        c = idle[0]
        try:
            await one(c, raw, expect_b, timeout)
        except RequestFailed as e:
            errors.add("warm-up: " + str(e))
            idle[0] = await connect(host, port)
        await asyncio.sleep(1.0 / rate)

    async def fire(t_sched: float) -> None:
        conn = None
        while idle:
            c = idle.pop()
            if c.alive:
                conn = c
                break
        try:
            if conn is None:
                conn = await connect(host, port)
            t0, _tf, td = await one(conn, raw, expect_b, timeout)
        except (RequestFailed, OSError) as e:
            errors.add(str(e) or type(e).__name__)
            return
        lat.append((td - t0) * 1000)
        lag.append((t0 - t_sched) * 1000)
        if conn.alive:
            idle.append(conn)

    n = int(rate * duration)
    tasks = []
    t_start = perf() + 0.05
    for i in range(n):
        t_sched = t_start + i / rate
        d = t_sched - perf()
        if d > 0:
            await asyncio.sleep(d)
        tasks.append(asyncio.ensure_future(fire(t_sched)))
    await asyncio.gather(*tasks)
    for c in idle:
        if c.transport is not None:
            c.transport.close()
    return {
        "mode": "open",
        "requests": len(lat),
        "rate": rate,
        "latency_ms": summary(lat),
        "send_lag_ms": summary(lag),
        "errors": errors.count,
        "error_samples": errors.samples,
    }


async def run_streams(spec: dict) -> dict:
    host, port = spec["host"], spec["port"]
    raw = build_request(spec)
    expect = spec.get("expect")
    expect_b = expect.encode() if expect else None
    n = spec["n"]
    timeout = spec.get("timeout", 120.0)
    connect_parallel = asyncio.Semaphore(spec.get("connect_parallel", 100))
    ttfb: list[float] = []
    dur: list[float] = []
    errors = Errors()
    completed = 0
    opened: list[float] = []
    t_begin = perf()

    async def stream() -> None:
        nonlocal completed
        conn: Conn | None = None
        try:
            async with connect_parallel:
                conn = await asyncio.wait_for(connect(host, port), 30)
            t0, fut = conn.send(raw)
            t_done = await asyncio.wait_for(fut, timeout)
            if conn.status != 200:
                raise RequestFailed(f"HTTP {conn.status}: {conn.tail[-60:]!r}")
            if expect_b is not None and expect_b not in conn.tail:
                raise RequestFailed(f"stream did not finish (tail {conn.tail[-60:]!r})")
        except asyncio.TimeoutError:
            errors.add(f"timeout after {timeout}s")
            return
        except (RequestFailed, OSError) as e:
            errors.add(str(e) or type(e).__name__)
            return
        finally:
            if conn is not None and conn.transport is not None:
                conn.transport.close()
        completed += 1
        ttfb.append((conn.t_first - t0) * 1000)
        opened.append((conn.t_first - t_begin) * 1000)
        dur.append((t_done - t0) * 1000)

    await asyncio.gather(*(stream() for _ in range(n)))
    return {
        "mode": "streams",
        "n": n,
        "completed": completed,
        "ttfb_ms": summary(ttfb),
        "duration_ms": summary(dur),
        "all_first_bytes_by_ms": max(opened) if opened else None,
        "errors": errors.count,
        "error_samples": errors.samples,
        "wall_s": perf() - t_begin,
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec["host"] not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("loadgen: loopback only")
    fn = {"closed": run_closed, "open": run_open, "streams": run_streams}[spec["mode"]]
    try:
        import uvloop  # type: ignore
    except ImportError:
        result = asyncio.run(fn(spec))
    else:
        result = uvloop.run(fn(spec))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
