"""antiapi benchmark: the same scenarios against the mock upstream directly, through antiapi, and
through LiteLLM proxy, in one run, printed as one table with ratios.

    python bench/run.py [--quick] [--scenarios passthrough stream translate latency streams idle coldstart]
                        [--no-litellm] [--profile] [--keep] [--antiapi-cmd "python bench/variants/use_httpx2.py"]

Everything runs on 127.0.0.1 as subprocesses this script starts (each in its own process group,
stopped by PID at the end). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LITELLM_VENV = BENCH / ".venv-litellm"
RESULTS = BENCH / "results"
MASTER_KEY = "sk-bench-0123456789abcdef0123456789abcdef"  # LiteLLM refuses to start without one
ALL_SCENARIOS = ["idle", "passthrough", "stream", "translate", "latency", "streams", "coldstart"]
TARGETS = ["upstream", "antiapi", "litellm"]

CHAT_BODY = {"model": "m", "messages": [{"role": "user", "content": "Hello, how are you today?"}], "max_tokens": 64}
CHAT_STREAM_BODY = {**CHAT_BODY, "stream": True}
SLOW_STREAM_BODY = {**CHAT_STREAM_BODY, "model": "slow"}
MSG_STREAM_BODY = {
    "model": "m",
    "max_tokens": 64,
    "stream": True,
    "messages": [{"role": "user", "content": "Hello, how are you today?"}],
}
CHAT_HEADERS = {"content-type": "application/json", "authorization": f"Bearer {MASTER_KEY}"}
MSG_HEADERS = {"content-type": "application/json", "x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"}


@dataclass
class Params:
    warmup: float
    duration: float
    conns: int
    rate: int
    open_duration: float
    n_streams: int
    stream_seconds: float
    cold_runs: int


QUICK = Params(warmup=1.0, duration=5.0, conns=64, rate=50, open_duration=10.0, n_streams=500, stream_seconds=5.0, cold_runs=3)
FULL = Params(warmup=2.0, duration=15.0, conns=64, rate=50, open_duration=30.0, n_streams=1000, stream_seconds=10.0, cold_runs=5)


# ----------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raise_nofile() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Proc:
    """A subprocess in its own process group; ``stop()`` signals that group only."""

    def __init__(self, name: str, cmd: list[str], *, log: Path, env: dict | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.log_path = log
        self._log = open(log, "ab")
        self.t_start = time.perf_counter()
        self.p = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True, preexec_fn=_raise_nofile,
        )
        self.pid = self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.p.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # the group may hold workers that outlived their parent
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.p.poll() is None:
            self.p.wait(5)
        self._log.close()

    def tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def http_get_status(port: int, path: str, timeout: float = 1.0) -> int:
    """Status code of GET path on 127.0.0.1:port, or 0 when nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n".encode())
            data = s.recv(64)
    except OSError:
        return 0
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def wait_healthy(proc: Proc, port: int, path: str, timeout: float) -> float:
    """Seconds from process start to the first 200 on ``path``; raises on failure/timeout."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if http_get_status(port, path, timeout=0.5) == 200:
            return time.perf_counter() - proc.t_start
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with code {proc.p.returncode}:\n{proc.tail()}")
        time.sleep(0.005)
    raise RuntimeError(f"{proc.name} not healthy after {timeout:.0f}s:\n{proc.tail()}")


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2 :].split()
        kids.setdefault(int(rest[1]), []).append(int(d))
    return kids


def rss_tree_kb(pid: int) -> int:
    """VmRSS of ``pid`` plus all its descendants (workers), in KiB."""
    kids = _children_map()
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
        todo.extend(kids.get(p, ()))
    return total


def cpu_tree_s(pid: int) -> float:
    """utime + stime of ``pid`` and its live descendants, in seconds."""
    kids = _children_map()
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2 :].split()
        total += int(rest[11]) + int(rest[12])
        todo.extend(kids.get(p, ()))
    return total / tick


class RssSampler:
    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_tree_kb(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join(5)


# ----------------------------------------------------------------------------- targets


@dataclass
class Target:
    name: str
    port: int
    proc: Proc | None  # None for the upstream mock itself (measured separately)
    health_path: str = "/health"
    notes: list[str] = field(default_factory=list)


ANTIAPI_CMD: list[str] | None = None  # --antiapi-cmd


def antiapi_cmd() -> list[str]:
    if ANTIAPI_CMD:
        return list(ANTIAPI_CMD)
    exe = Path(sys.executable).parent / "antiapi"  # the real console script, not a pyenv shim
    if exe.exists():
        return [str(exe)]
    found = shutil.which("antiapi")
    return [found] if found else [sys.executable, "-m", "antiapi"]


def write_antiapi_config(data_dir: Path, mock_port: int) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    cfg = data_dir / "config.yaml"
    cfg.write_text(
        "providers:\n"
        "  up:\n"
        "    type: openai\n"
        f"    base_url: http://127.0.0.1:{mock_port}/v1\n"
        "    api_key: k\n"
        "models:\n"
        "  - name: m\n"
        "    provider: up\n"
        "  - name: slow\n"
        "    provider: up\n"
    )
    cfg.chmod(0o600)


def start_antiapi(work: Path, mock_port: int, tag: str) -> tuple[Proc, int]:
    data_dir = work / "antiapi-data"
    write_antiapi_config(data_dir, mock_port)
    port = free_port()
    cmd = antiapi_cmd() + ["serve", "--headless", "--port", str(port), "--data-dir", str(data_dir), "--log-level", "warning"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTI_API")}
    return Proc(f"antiapi{tag}", cmd, log=work / "antiapi.log", env=env, cwd=work), port


def write_litellm_config(work: Path, mock_port: int) -> Path:
    cfg = work / "litellm.yaml"
    models = ""
    for name in ("m", "slow"):
        models += (
            f"  - model_name: {name}\n"
            "    litellm_params:\n"
            f"      model: openai/{name}\n"
            f"      api_base: http://127.0.0.1:{mock_port}/v1\n"
            "      api_key: k\n"
        )
    cfg.write_text(
        "model_list:\n" + models
        + "litellm_settings:\n"
        "  telemetry: false\n"
        "  drop_params: true\n"
        # LiteLLM sends Anthropic-client requests for openai/ models to the Responses API by
        # default; the mock (like most OpenAI-compatible servers) speaks Chat Completions.
        "  use_chat_completions_url_for_anthropic_messages: true\n"
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
        "  disable_spend_logs: true\n"
    )
    return cfg


def litellm_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "LITELLM_", "OPENAI_", "ANTHROPIC_"))}
    env.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the price list at start-up
            "LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES": "True",
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "ANONYMIZED_TELEMETRY": "False",
            "DISABLE_ADMIN_UI": "True",
            "NO_DOCS": "True",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def start_litellm(work: Path, mock_port: int, tag: str) -> tuple[Proc, int]:
    cfg = write_litellm_config(work, mock_port)
    port = free_port()
    cmd = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "2"]
    return Proc(f"litellm{tag}", cmd, log=work / "litellm.log", env=litellm_env(), cwd=work), port


def ensure_litellm(log) -> str | None:
    """Install LiteLLM proxy into bench/.venv-litellm if needed. Returns its version or None."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if not exe.exists():
        log("installing LiteLLM into bench/.venv-litellm (one-off, a few minutes) ...")
        try:
            subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True, timeout=120)
            subprocess.run(
                [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"],
                check=True, timeout=900, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
        except (subprocess.SubprocessError, OSError) as e:
            log(f"LiteLLM could not be installed ({type(e).__name__}); running without it")
            return None
    try:
        out = subprocess.run(
            [str(LITELLM_VENV / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True, text=True, timeout=60, check=True,
        )
        return out.stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return None


# ----------------------------------------------------------------------------- load


def loadgen(spec: dict, timeout: float) -> dict:
    spec = {"host": "127.0.0.1", **spec}
    p = subprocess.run(
        [sys.executable, str(BENCH / "loadgen.py"), json.dumps(spec)],
        capture_output=True, text=True, timeout=timeout, preexec_fn=_raise_nofile,
    )
    if p.returncode != 0:
        raise RuntimeError(f"loadgen failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def closed_spec(t: Target, P: Params, kind: str) -> dict:
    if kind == "passthrough":
        req = {"path": "/v1/chat/completions", "headers": CHAT_HEADERS, "body": CHAT_BODY}
    elif kind == "stream":
        req = {"path": "/v1/chat/completions", "headers": CHAT_HEADERS, "body": CHAT_STREAM_BODY, "expect": "[DONE]"}
    else:  # translate: Anthropic client. Direct = the mock's own Anthropic stream (same 50 deltas).
        req = {"path": "/v1/messages", "headers": MSG_HEADERS, "body": MSG_STREAM_BODY, "expect": "message_stop"}
    return {"mode": "closed", "port": t.port, "conns": P.conns, "warmup": P.warmup, "duration": P.duration, "timeout": 60, **req}


def pyspy_available() -> str | None:
    exe = Path(sys.executable).parent / "py-spy"
    return str(exe) if exe.exists() else shutil.which("py-spy")


def profile_run(t: Target, P: Params, kind: str, out_dir: Path, log) -> dict | None:
    """An extra (unmeasured) run of ``kind`` with py-spy sampling antiapi; returns the top frames."""
    spy = pyspy_available()
    if spy is None or t.proc is None:
        log("  py-spy not found (pip install py-spy); skipping the profile")
        return None
    raw = out_dir / f"profile-{kind}.txt"
    dur = max(3, int(P.duration))
    spec = closed_spec(t, P, kind)
    spec["duration"] = dur + 2
    cmd = [spy, "record", "--pid", str(t.proc.pid), "--duration", str(dur), "--rate", "200", "--format", "raw",
           "--nonblocking", "-o", str(raw)]
    spy_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        loadgen(spec, timeout=dur + 120)
    finally:
        try:
            spy_proc.wait(dur + 30)
        except subprocess.TimeoutExpired:
            spy_proc.kill()
            spy_proc.wait()
    if not raw.exists():
        return None
    return summarize_collapsed(raw)


def summarize_collapsed(raw: Path, top: int = 15) -> dict:
    self_t: Counter = Counter()
    incl: Counter = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        k = int(n)
        total += k
        frames = stack.split(";")
        if frames:
            self_t[_short(frames[-1])] += k
        for f in set(_short(f) for f in frames):
            incl[f] += k
    if total == 0:
        return {"samples": 0}
    return {
        "samples": total,
        "self": [(f, round(100 * c / total, 1)) for f, c in self_t.most_common(top)],
        "inclusive": [(f, round(100 * c / total, 1)) for f, c in incl.most_common(top * 3)],
    }


def _short(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"
    name, _, rest = frame.partition(" (")
    path = rest.rstrip(")").rsplit(":", 1)[0]
    parts = path.split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    elif "antiapi" in parts:
        parts = parts[parts.index("antiapi") :]
    else:
        parts = parts[-2:]
    return f"{name} ({'/'.join(parts)})"


# ----------------------------------------------------------------------------- scenarios


def run_target(t: Target, scenarios: list[str], P: Params, res: dict, log, profile_dir: Path | None) -> None:
    r = res.setdefault(t.name, {})
    pid = t.proc.pid if t.proc is not None else None
    if "idle" in scenarios and pid is not None:
        # one warm-up request, then settle
        loadgen({"mode": "closed", "port": t.port, "conns": 1, "warmup": 0.0, "duration": 0.3, "path": "/v1/chat/completions",
                 "headers": CHAT_HEADERS, "body": CHAT_BODY}, timeout=60)
        time.sleep(1.0)
        r["idle_rss_mb"] = rss_tree_kb(pid) / 1024
        log(f"  idle RSS {r['idle_rss_mb']:.1f} MB")
    for kind in ("passthrough", "stream", "translate"):
        if kind not in scenarios:
            continue
        c0, w0 = (cpu_tree_s(pid) if pid else 0.0), time.perf_counter()
        out = loadgen(closed_spec(t, P, kind), timeout=P.warmup + P.duration + 180)
        if pid:  # cores the gateway kept busy (warm-up included)
            out["cpu_cores"] = (cpu_tree_s(pid) - c0) / (time.perf_counter() - w0)
        r[kind] = out
        lat = out["latency_ms"]
        log(f"  {kind:12s} {out['rps']:9.0f} req/s  p50 {lat.get('p50') or 0:7.2f} ms  p99 {lat.get('p99') or 0:7.2f} ms  errors {out['errors']}"
            + (f"  CPU {out['cpu_cores']:.2f} cores" if pid else "")
            + (f"  e.g. {out['error_samples'][0]}" if out["error_samples"] else ""))
    if "latency" in scenarios:
        spec = {"mode": "open", "port": t.port, "rate": P.rate, "duration": P.open_duration, "warmup": 2.0, "timeout": 30,
                "path": "/v1/chat/completions", "headers": CHAT_HEADERS, "body": CHAT_BODY}
        out = loadgen(spec, timeout=P.open_duration + 120)
        r["latency"] = out
        lat = out["latency_ms"]
        log(f"  latency@{P.rate}/s p50 {lat.get('p50') or 0:.3f} ms  p99 {lat.get('p99') or 0:.3f} ms  errors {out['errors']}")
    if "streams" in scenarios:
        spec = {"mode": "streams", "port": t.port, "n": P.n_streams, "timeout": P.stream_seconds + 120, "connect_parallel": 100,
                "path": "/v1/chat/completions", "headers": CHAT_HEADERS, "body": SLOW_STREAM_BODY, "expect": "[DONE]"}
        before = rss_tree_kb(pid) if pid else 0
        if pid:
            with RssSampler(pid) as s:
                out = loadgen(spec, timeout=P.stream_seconds + 300)
            out["rss_before_mb"] = before / 1024
            out["rss_peak_mb"] = s.peak / 1024
            out["kb_per_stream"] = max(0, s.peak - before) / P.n_streams
        else:
            out = loadgen(spec, timeout=P.stream_seconds + 300)
        r["streams"] = out
        log(f"  streams {out['completed']}/{out['n']} completed, TTFB p50 {out['ttfb_ms'].get('p50') or 0:.1f} ms, errors {out['errors']}"
            + (f", peak RSS {out['rss_peak_mb']:.0f} MB ({out['kb_per_stream']:.1f} KB/stream)" if pid else "")
            + (f"  e.g. {out['error_samples'][0]}" if out["error_samples"] else ""))
    if profile_dir is not None and t.name == "antiapi":
        # after the measured runs, so sampling never disturbs a measurement
        for kind in ("passthrough", "stream", "translate"):
            if kind in scenarios:
                log(f"  profiling {kind} with py-spy (unmeasured run)")
                prof = profile_run(t, P, kind, profile_dir, log)
                if prof:
                    res.setdefault("profile", {})[kind] = prof


def cold_start(starter, health_path: str, runs: int, log, work: Path, mock_port: int) -> list[float]:
    times = []
    for i in range(runs):
        proc, port = starter(work, mock_port, f"-cold{i}")
        try:
            times.append(wait_healthy(proc, port, health_path, timeout=120))
        finally:
            proc.stop()
        time.sleep(0.3)
    log(f"  cold start: {', '.join(f'{x:.2f}' for x in times)} s")
    return times


# ----------------------------------------------------------------------------- report


def fmt(v, spec=".0f") -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return format(v, spec)


def ratio(a, b, spec=".2f") -> str:
    if a is None or b is None or b == 0:
        return "-"
    return format(a / b, spec) + "x"


def g(res: dict, target: str, *path):
    cur = res.get(target)
    for k in path:
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur


def build_rows(res: dict, P: Params) -> list[tuple]:
    """(scenario, metric, upstream, antiapi, litellm, anti/up, lite/up, anti/lite) as strings."""
    rows = []

    def add(scen, metric, path, spec=".0f", ratios=True):
        u, a, l = (g(res, t, *path) for t in TARGETS)
        rows.append((scen, metric, fmt(u, spec), fmt(a, spec), fmt(l, spec),
                     ratio(a, u) if ratios else "", ratio(l, u) if ratios else "", ratio(a, l) if ratios else ""))

    names = {
        "passthrough": f"1 passthrough chat, {P.conns} conns",
        "stream": "2 chat stream, 50 chunks",
        "translate": "3 anthropic->openai stream",
    }
    for kind, title in names.items():
        if not any(g(res, t, kind) for t in TARGETS):
            continue
        add(title, "req/s", (kind, "rps"))
        add("", "p50 ms", (kind, "latency_ms", "p50"), ".2f")
        add("", "p99 ms", (kind, "latency_ms", "p99"), ".2f")
        add("", "errors", (kind, "errors"), "d", ratios=False)
        add("", "gateway CPU (cores)", (kind, "cpu_cores"), ".2f", ratios=False)
    if any(g(res, t, "latency") for t in TARGETS):
        add(f"4 open loop {P.rate} req/s", "p50 ms", ("latency", "latency_ms", "p50"), ".3f")
        add("", "p99 ms", ("latency", "latency_ms", "p99"), ".3f")
        u50, u99 = g(res, "upstream", "latency", "latency_ms", "p50"), g(res, "upstream", "latency", "latency_ms", "p99")
        for metric, base, key in (("added p50 ms", u50, "p50"), ("added p99 ms", u99, "p99")):
            vals = []
            for t in ("antiapi", "litellm"):
                v = g(res, t, "latency", "latency_ms", key)
                vals.append(None if v is None or base is None else v - base)
            rows.append(("", metric, "0", fmt(vals[0], ".3f"), fmt(vals[1], ".3f"), "", "", ratio(vals[0], vals[1])))
    if any(g(res, t, "streams") for t in TARGETS):
        title = f"5 {P.n_streams} x {P.stream_seconds:.0f}s streams"
        rows.append((title, "completed", *(
            "-" if g(res, t, "streams") is None else f"{g(res, t, 'streams', 'completed')}/{g(res, t, 'streams', 'n')}" for t in TARGETS
        ), "", "", ""))
        add("", "errors", ("streams", "errors"), "d", ratios=False)
        add("", "TTFB p50 ms", ("streams", "ttfb_ms", "p50"), ".1f")
        add("", "TTFB p99 ms", ("streams", "ttfb_ms", "p99"), ".1f")
        base = g(res, "upstream", "streams", "ttfb_ms", "p50")
        vals = [None if g(res, t, "streams", "ttfb_ms", "p50") is None or base is None else g(res, t, "streams", "ttfb_ms", "p50") - base
                for t in ("antiapi", "litellm")]
        rows.append(("", "added TTFB p50 ms", "0", fmt(vals[0], ".1f"), fmt(vals[1], ".1f"), "", "", ratio(vals[0], vals[1])))
        add("", "peak RSS MB", ("streams", "rss_peak_mb"), ".0f")
        add("", "RSS KB/stream", ("streams", "kb_per_stream"), ".1f")
    if any(g(res, t, "idle_rss_mb") for t in TARGETS):
        add("6 idle", "RSS MB", ("idle_rss_mb",), ".1f")
    if any(g(res, t, "cold_start_s") for t in TARGETS):
        add(f"7 cold start to /health", f"median s", ("cold_start_s",), ".2f")
    return rows


def render_table(rows: list[tuple]) -> str:
    head = ("scenario", "metric", "upstream", "antiapi", "litellm", "antiapi/up", "litellm/up", "antiapi/litellm")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * 6) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(r) + " |")
    return "\n".join(lines)


def check_targets(res: dict, P: Params) -> list[tuple[str, str, str]]:
    """(target, measured, PASS/FAIL/n/a)."""
    out = []

    def verdict(ok):
        return "n/a" if ok is None else ("PASS" if ok else "FAIL")

    for kind, label in (("passthrough", "passthrough throughput >= 10x LiteLLM"), ("translate", "translated stream throughput >= 10x LiteLLM")):
        a, l = g(res, "antiapi", kind, "rps"), g(res, "litellm", kind, "rps")
        ok = None if a is None or l is None or l == 0 else a >= 10 * l
        out.append((label, f"{a / l:.1f}x" if ok is not None else "no LiteLLM result", verdict(ok)))
    u = g(res, "upstream", "latency", "latency_ms")
    a = g(res, "antiapi", "latency", "latency_ms")
    if u and a:
        d50, d99 = a["p50"] - u["p50"], a["p99"] - u["p99"]
        out.append((f"added latency p50 <= 1 ms at {P.rate} req/s", f"{d50:.3f} ms", verdict(d50 <= 1.0)))
        out.append((f"added latency p99 <= 3 ms at {P.rate} req/s", f"{d99:.3f} ms", verdict(d99 <= 3.0)))
    s, su = g(res, "antiapi", "streams"), g(res, "upstream", "streams")
    if s:
        n_full = P.n_streams >= 1000
        out.append((f"all {s['n']} streams complete" + ("" if n_full else " (quick: target is 1,000)"),
                    f"{s['completed']}/{s['n']}, {s['errors']} errors", verdict(s["completed"] == s["n"] and s["errors"] == 0)))
        if su and s["ttfb_ms"].get("p50") is not None and su["ttfb_ms"].get("p50") is not None:
            d = s["ttfb_ms"]["p50"] - su["ttfb_ms"]["p50"]
            out.append(("added TTFB p50 <= 50 ms with all streams open", f"{d:.1f} ms", verdict(d <= 50)))
        if "kb_per_stream" in s:
            out.append(("RSS <= 30 KB per open stream", f"{s['kb_per_stream']:.1f} KB", verdict(s["kb_per_stream"] <= 30)))
    idle = g(res, "antiapi", "idle_rss_mb")
    if idle is not None:
        out.append(("idle RSS <= 80 MB", f"{idle:.1f} MB", verdict(idle <= 80)))
    cs = g(res, "antiapi", "cold_start_s")
    if cs is not None:
        out.append(("cold start to healthy <= 1.5 s", f"{cs:.2f} s", verdict(cs <= 1.5)))
    return out


def machine_info() -> dict:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1]
        mem_gb = f"{int(mem) / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        mem_gb = "?"
    try:
        import uvloop  # type: ignore  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    return {"nproc": os.cpu_count(), "cpu": model, "mem": mem_gb, "python": platform.python_version(),
            "kernel": platform.release(), "loadgen_loop": loop}


# ----------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description="antiapi vs upstream vs LiteLLM benchmark (127.0.0.1 only)")
    ap.add_argument("--quick", action="store_true", help="smaller counts (~3 minutes)")
    ap.add_argument("--scenarios", nargs="+", choices=ALL_SCENARIOS, default=ALL_SCENARIOS)
    ap.add_argument("--no-litellm", action="store_true", help="skip LiteLLM")
    ap.add_argument("--profile", action="store_true",
                    help="after the measured antiapi runs, run the throughput scenarios again under py-spy (not measured) and print the top frames")
    ap.add_argument("--antiapi-cmd", default=None,
                    help="command that starts antiapi (default: the antiapi console script); 'serve --headless ...' is appended")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work dir (configs and server logs)")
    ap.add_argument("--out", default=None, help="write the JSON results here (default bench/results/<time>.json)")
    args = ap.parse_args()
    P = QUICK if args.quick else FULL
    if args.antiapi_cmd:
        global ANTIAPI_CMD
        import shlex

        # antiapi runs in a temporary directory: make relative file arguments absolute
        ANTIAPI_CMD = [str(Path(a).resolve()) if not a.startswith("-") and Path(a).exists() else a
                       for a in shlex.split(args.antiapi_cmd)]
    scen = args.scenarios
    t_run = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_run:6.1f}s] {msg}", flush=True)

    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = Path(tempfile.mkdtemp(prefix="antiapi-bench-"))
    profile_dir = RESULTS / f"profile-{stamp}" if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True)
    res: dict = {"machine": machine_info(), "params": P.__dict__, "scenarios": scen, "notes": [],
                 "command": "python bench/run.py " + " ".join(sys.argv[1:])}
    log(f"machine: {res['machine']['nproc']} x {res['machine']['cpu']}, {res['machine']['mem']}; work dir {work}")

    lite_version = None
    if not args.no_litellm:
        lite_version = ensure_litellm(log)
        if lite_version is None:
            res["notes"].append("LiteLLM skipped: it could not be installed into bench/.venv-litellm")
    else:
        res["notes"].append("LiteLLM skipped (--no-litellm)")
    res["litellm_version"] = lite_version

    procs: list[Proc] = []
    mock = Proc("mock", [sys.executable, str(BENCH / "mock_upstream.py"), "--port", str(port := free_port()),
                         "--slow-seconds", str(P.stream_seconds), "--max-seconds", "3600"], log=work / "mock.log")
    procs.append(mock)
    mock_port = port
    try:
        wait_healthy(mock, mock_port, "/health", 20)
        load_scen = [s for s in scen if s != "coldstart"]
        # 1) the mock on its own
        log("target: upstream (the mock, direct)")
        run_target(Target("upstream", mock_port, None), load_scen, P, res, log, None)

        # 2) antiapi
        log(f"target: antiapi ({' '.join(antiapi_cmd())})")
        proc, port = start_antiapi(work, mock_port, "")
        procs.append(proc)
        wait_healthy(proc, port, "/health", 30)
        try:
            run_target(Target("antiapi", port, proc), load_scen, P, res, log, profile_dir)
        finally:
            proc.stop()
        if "coldstart" in scen:
            times = cold_start(start_antiapi, "/health", P.cold_runs, log, work, mock_port)
            res["antiapi"]["cold_start_s"] = statistics.median(times)
            res["antiapi"]["cold_start_runs"] = times

        # 3) LiteLLM
        if lite_version:
            log(f"target: litellm {lite_version} (2 workers)")
            proc, port = start_litellm(work, mock_port, "")
            procs.append(proc)
            try:
                wait_healthy(proc, port, "/health/liveliness", 180)
                # both workers must be up before measuring: a few requests warm them
                run_target(Target("litellm", port, proc, "/health/liveliness"), load_scen, P, res, log, None)
            except RuntimeError as e:
                log(f"LiteLLM failed: {e}")
                res["notes"].append(f"LiteLLM failed: {str(e).splitlines()[0]}")
            finally:
                proc.stop()
            if "coldstart" in scen:
                try:
                    times = cold_start(start_litellm, "/health/liveliness", P.cold_runs, log, work, mock_port)
                    res["litellm"]["cold_start_s"] = statistics.median(times)
                    res["litellm"]["cold_start_runs"] = times
                except RuntimeError as e:
                    log(f"LiteLLM cold start failed: {e}")
    finally:
        for p in reversed(procs):
            p.stop()

    rows = build_rows(res, P)
    table = render_table(rows)
    targets = check_targets(res, P)
    res["table_md"] = table
    res["targets"] = targets
    out = Path(args.out) if args.out else RESULTS / f"{stamp}.json"
    out.write_text(json.dumps(res, indent=1))
    if args.keep:
        res["notes"].append(f"work dir kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)

    m = res["machine"]
    print()
    print(f"## antiapi benchmark ({'quick' if args.quick else 'full'}), {time.strftime('%Y-%m-%d')}")
    print(f"machine: nproc {m['nproc']}, {m['cpu']}, {m['mem']}, Python {m['python']}, kernel {m['kernel']}; "
          f"LiteLLM {lite_version or 'not run'}")
    print(f"command: {res['command']}")
    print()
    print(table)
    print()
    print("| target | measured | result |")
    print("|---|---:|---|")
    for name, measured, verdict in targets:
        print(f"| {name} | {measured} | {verdict} |")
    for n in res["notes"]:
        print(f"\nnote: {n}")
    if res.get("profile"):
        print("\n## py-spy (antiapi, separate unmeasured runs)")
        for kind, prof in res["profile"].items():
            print(f"\n### {kind}: {prof.get('samples', 0)} samples; top self time")
            for f, pc in prof.get("self", []):
                print(f"  {pc:5.1f}%  {f}")
            print(f"  inclusive (antiapi frames):")
            for f, pc in [x for x in prof.get("inclusive", []) if "antiapi/" in x[0]][:15]:
                print(f"  {pc:5.1f}%  {f}")
        print(f"\ncollapsed stacks: {profile_dir}")
    print(f"\nresults: {out}  ({time.perf_counter() - t_run:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
