"""Run the real Claude Code and Codex CLIs against an antiapi gateway, offline.

Each run gets its own temporary HOME / CODEX_HOME and work directory, a hard timeout (the process
group is killed by PID on expiry) and returns a :class:`CliRun` with exit code, stdout, stderr and
the parsed output. The mock-handler helpers below build the per-request logic the CLIs need (they
may send background requests besides the main turn, so replies are chosen by request content, not
by order).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.clients import ensure_cli

CLI_TIMEOUT = 120.0


@dataclass
class CliRun:
    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    workdir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        """stdout parsed as JSON (Claude Code ``--output-format json``)."""
        text = self.stdout.strip()
        try:
            return json.loads(text)
        except ValueError:
            # be tolerant of stray lines before the JSON document
            for line in reversed(text.splitlines()):
                line = line.strip()
                if line.startswith("{"):
                    return json.loads(line)
            raise

    def describe(self) -> str:
        return (f"argv={self.argv}\nrc={self.returncode} timed_out={self.timed_out} "
                f"seconds={self.seconds:.1f}\n--- stdout ---\n{self.stdout[-4000:]}\n"
                f"--- stderr ---\n{self.stderr[-4000:]}")


def cli_or_skip(name: str) -> Path:
    """Path of the pinned CLI; skip the test when it cannot be installed (no npm / offline)."""
    try:
        return ensure_cli(name)
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"{name} CLI unavailable: {exc}")


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    """A minimal environment: no inherited provider keys or proxies leak into the CLI."""
    keep = ("PATH", "LANG", "LC_ALL", "TERM", "TMPDIR", "USER", "LOGNAME", "SHELL", "NODE_PATH")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def run_cli(argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float = CLI_TIMEOUT,
            stdin: str | None = None) -> CliRun:
    """Run ``argv`` in its own process group; on timeout kill that group (by PID) and report it."""
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=_clean_env(env), stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(input=stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate(timeout=10)
    return CliRun(list(argv), proc.returncode, out or "", err or "", time.monotonic() - start, timed_out, cwd)


# --------------------------------------------------------------------------- Claude Code


def run_claude(gateway_url: str, prompt: str, tmp: Path, *, model: str, allowed_tools: str | None = "Write",
               extra_args: list[str] | None = None, timeout: float = CLI_TIMEOUT,
               env_extra: dict[str, str | None] | None = None) -> CliRun:
    """``claude -p PROMPT --output-format json --model MODEL`` against ``gateway_url`` (no /v1)."""
    binary = cli_or_skip("claude")
    home = tmp / "claude-home"
    home.mkdir(parents=True, exist_ok=True)
    work = claude_work_dir(tmp)
    argv = [str(binary), "-p", prompt, "--output-format", "json", "--model", model]
    if allowed_tools:
        argv += ["--allowedTools", allowed_tools]
    argv += extra_args or []
    env = {
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": gateway_url,
        "ANTHROPIC_API_KEY": "sk-ant-e2e-anything",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    _apply_env(env, env_extra)
    return run_cli(argv, env=env, cwd=work, timeout=timeout)


def _apply_env(env: dict[str, str], extra: dict[str, str | None] | None) -> None:
    """Overlay ``extra`` on ``env``; a None value removes the variable."""
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v


def claude_work_dir(tmp: Path) -> Path:
    """The cwd :func:`run_claude` uses (create it early to know file paths for the mock script)."""
    work = tmp / "work"
    work.mkdir(parents=True, exist_ok=True)
    return work.resolve()


# --------------------------------------------------------------------------- Codex


def codex_config(gateway_url: str, model: str, retries: int | None = None) -> str:
    """config.toml for a provider "antiapi" at ``gateway_url``/v1 (Responses API). ``retries`` sets
    Codex's own request/stream retry budgets (None: Codex defaults, 5 stream retries honouring
    ``retry-after``)."""
    text = (
        f'model = "{model}"\n'
        'model_provider = "antiapi"\n'
        "\n"
        "[model_providers.antiapi]\n"
        'name = "antiapi"\n'
        f'base_url = "{gateway_url}/v1"\n'
        'wire_api = "responses"\n'
        'env_key = "ANTIAPI_KEY"\n'
    )
    if retries is not None:
        text += f"request_max_retries = {retries}\nstream_max_retries = {retries}\n"
    return text


def codex_work_dir(tmp: Path) -> Path:
    work = tmp / "codex-work"
    work.mkdir(parents=True, exist_ok=True)
    return work.resolve()


def run_codex(gateway_url: str, prompt: str, tmp: Path, *, model: str, extra_args: list[str] | None = None,
              retries: int | None = None, timeout: float = CLI_TIMEOUT,
              env_extra: dict[str, str | None] | None = None) -> CliRun:
    """``codex exec`` with a throwaway CODEX_HOME pointing at the gateway's Responses endpoint.
    The final agent message is also written to ``run.extra["last_message"]``."""
    binary = cli_or_skip("codex")
    home = tmp / "codex-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(codex_config(gateway_url, model, retries))
    work = codex_work_dir(tmp)
    last = tmp / "codex-last-message.txt"
    argv = [str(binary), "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
            "--color", "never", "--output-last-message", str(last), *(extra_args or []), prompt]
    env = {"HOME": str(tmp / "codex-user-home"), "CODEX_HOME": str(home), "ANTIAPI_KEY": "e2e-anything",
           "RUST_LOG": "error"}
    _apply_env(env, env_extra)
    Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
    run = run_cli(argv, env=env, cwd=work, timeout=timeout)
    run.extra["last_message"] = last.read_text() if last.exists() else None
    return run


# --------------------------------------------------------------------------- request inspection


def anthropic_has_tool_result(body: dict) -> bool:
    msgs = body.get("messages") or []
    if not msgs or msgs[-1].get("role") != "user":
        return False
    content = msgs[-1].get("content")
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def chat_has_tool_result(body: dict) -> bool:
    msgs = body.get("messages") or []
    return bool(msgs) and msgs[-1].get("role") == "tool"


def gemini_has_tool_result(body: dict) -> bool:
    contents = body.get("contents") or []
    if not contents:
        return False
    return any("functionResponse" in p for p in contents[-1].get("parts") or [])


def responses_has_tool_result(body: dict) -> bool:
    items = body.get("input")
    return isinstance(items, list) and bool(items) and isinstance(items[-1], dict) \
        and items[-1].get("type") == "function_call_output"


def tool_names(body: dict) -> list[str]:
    """Tool names offered in an Anthropic, Chat, Responses or Gemini request body."""
    names: list[str] = []
    for t in body.get("tools") or []:
        if not isinstance(t, dict):
            continue
        if "name" in t:
            names.append(t["name"])
        elif isinstance(t.get("function"), dict):
            names.append(t["function"].get("name"))
        for fd in t.get("functionDeclarations") or t.get("function_declarations") or []:
            names.append(fd.get("name"))
    return names


HAS_RESULT: dict[str, Callable[[dict], bool]] = {
    "anthropic": anthropic_has_tool_result,
    "openai_chat": chat_has_tool_result,
    "gemini": gemini_has_tool_result,
    "openai_responses": responses_has_tool_result,
}


def tool_round_trip_handler(dialect: str, tool: str, call: Any, final: Any, *, other: Any = "OK",
                            main: Callable[[Any], bool] | None = None) -> Callable[[Any], Any]:
    """A mock ``handler``: the main turn (request offering ``tool``) first gets ``call``, and once its
    last message carries a tool result gets ``final``; any other request (background work, titles)
    gets ``other``. ``main`` may narrow what counts as the main conversation."""
    has_result = HAS_RESULT[dialect]

    def handler(req: Any) -> Any:
        body = req.json if isinstance(req.json, dict) else {}
        if main is not None and not main(req):
            return other
        if has_result(body):
            return final
        if tool in tool_names(body):
            return call
        return other

    return handler
