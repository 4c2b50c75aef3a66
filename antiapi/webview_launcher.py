"""Auto-open: ``antiapi serve`` starts the web dashboard (``antiapi tui --web``) next to the gateway
and opens the user's browser at it, when the dashboard setting ``ui.auto_open`` is on.

* The web view is a child process (``python -m antiapi.tui --web``) on 127.0.0.1, port 8965 or the
  next free one, attached to this gateway with the data dir's ``admin_token`` file (the token is
  never on a command line). It runs in its own process group; its output goes to
  ``<data dir>/webview.log``.
* The browser is opened once, at a **one-time link** (``/?code=…``, see :mod:`antiapi.tui.web`),
  by Python's :mod:`webbrowser` (which honours ``$BROWSER``) in a detached helper process, so a
  console browser can never take over the dashboard's terminal and the admin token never appears
  in the browser's command line. When no browser can be opened the link is logged instead.
* While the view answers, :meth:`WebDashboard.current_url` is its address (``create_app(web_url=…)``:
  the gateway's ``/quota``… redirect there), else None.
* If the view dies it is restarted with a growing delay, a bounded number of times.
* It is stopped (its process group: SIGTERM, then SIGKILL) when the gateway process ends: at
  interpreter exit, and on SIGTERM/SIGHUP (chained before the previous handler, which uvicorn
  re-raises after its graceful shutdown). If the gateway is killed outright the view notices its
  parent is gone and exits by itself.

May import: stdlib only (``serve --headless`` must never load Textual; nothing heavy at import).
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import logging
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["DEFAULT_WEB_PORT", "SETTING_KEY", "WebDashboard", "auto_open_enabled", "start_if_enabled"]

log = logging.getLogger("antiapi.webview")

DEFAULT_WEB_PORT = 8965
SETTING_KEY = "ui.auto_open"
DB_FILENAME = "antiapi.db"  # antiapi.store.DB_FILENAME (not imported: it pulls in msgspec)
TOKEN_FILENAME = "admin_token"  # antiapi.server.admin.TOKEN_FILENAME
LOG_FILENAME = "webview.log"
LOGIN_CODE_ENV = "ANTIAPI_WEB_LOGIN_CODE"  # antiapi.tui.web.LOGIN_CODE_ENV
PARENT_PID_ENV = "ANTIAPI_WEB_PARENT_PID"  # antiapi.tui.web.PARENT_PID_ENV

#: ports tried after the first one when it is taken
PORT_TRIES = 20
#: restarts after the view died (the count starts again after it ran for RESET_AFTER seconds)
MAX_RESTARTS = 5
RESET_AFTER = 60.0
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
#: how long the view may take to answer, and the gateway to accept connections
READY_TIMEOUT = 30.0
GATEWAY_TIMEOUT = 60.0
#: SIGTERM → SIGKILL grace when stopping
STOP_GRACE = 5.0
#: exit code of the browser helper when there is no browser to open
_NO_BROWSER = 3


def auto_open_enabled(data_dir: str | os.PathLike[str] | None) -> bool:
    """The ``ui.auto_open`` setting of the state database in ``data_dir`` (False when the
    database, the table or the key is missing or unreadable). Never creates anything."""
    if data_dir is None:
        return False
    path = Path(data_dir) / DB_FILENAME
    if not path.is_file():
        return False
    conn = None
    try:
        conn = sqlite3.connect(path, timeout=5.0)
        conn.execute("PRAGMA query_only=ON")
        row = conn.execute("SELECT value FROM settings WHERE key = ?", (SETTING_KEY,)).fetchone()
    except sqlite3.Error as e:
        log.warning("auto-open: cannot read the settings in %s: %s", path, e)
        return False
    finally:
        if conn is not None:
            conn.close()
    if row is None:
        return False
    try:
        return bool(json.loads(row[0]))
    except (TypeError, ValueError):
        return False


def start_if_enabled(gateway_url: str, data_dir: str | os.PathLike[str] | None, *, no_open: bool = False) -> WebDashboard | None:
    """What ``antiapi serve`` calls: start the web dashboard (and open the browser) when the
    setting is on and ``--no-open`` was not given; None otherwise."""
    if no_open or data_dir is None or not auto_open_enabled(data_dir):
        return None
    return WebDashboard.start(gateway_url, data_dir)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(first: int = DEFAULT_WEB_PORT, tries: int = PORT_TRIES) -> int | None:
    """``first`` or the next free port on 127.0.0.1 (None if ``tries`` ports are all taken)."""
    for port in range(first, min(first + tries, 65536)):
        if _port_free(port):
            return port
    return None


def _exited(proc: subprocess.Popen) -> bool:
    """Has ``proc`` exited? Does not reap it (so its pid, and process group id, stay reserved
    until :meth:`subprocess.Popen.wait`)."""
    if proc.returncode is not None:
        return True
    if not hasattr(os, "waitid"):  # pragma: no cover - not Linux/macOS
        return proc.poll() is not None
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped elsewhere
        return True


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4000))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


class WebDashboard:
    """The web dashboard child process of one gateway (see the module docstring).

    :meth:`start` returns at once (the view starts in a background thread once the gateway
    accepts connections); :meth:`stop` is idempotent and also runs at exit by itself."""

    def __init__(
        self,
        gateway_url: str,
        data_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        open_browser: bool = True,
        python: str = sys.executable,
        problem: str | None = None,
    ) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self.data_dir = Path(data_dir)
        self.token_file = self.data_dir / TOKEN_FILENAME
        self.log_path = self.data_dir / LOG_FILENAME
        self.port = port
        self.open_browser = open_browser
        self.python = python
        #: why the view is not started (shown in the banner), else None
        self.problem = problem
        #: the link the browser was given (or that was logged), once known
        self.link: str | None = None
        self.restarts = 0
        self._proc: subprocess.Popen | None = None
        self._ready = False
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._prev_handlers: dict[int, Callable | int | None] = {}

    # ------------------------------------------------------------------ public

    @classmethod
    def start(cls, gateway_url: str, data_dir: str | os.PathLike[str], *, first_port: int = DEFAULT_WEB_PORT,
              open_browser: bool = True) -> WebDashboard:
        """Start the view for the gateway at ``gateway_url`` (returns at once)."""
        if find_spec("textual_serve") is None:
            problem = "not started: auto-open needs textual-serve (pip install textual-serve==1.1.3)"
            log.warning("web dashboard %s", problem)
            return cls(gateway_url, data_dir, problem=problem)
        port = pick_port(first_port)
        if port is None:
            problem = f"not started: ports {first_port}-{first_port + PORT_TRIES - 1} on 127.0.0.1 are all taken"
            log.warning("web dashboard %s", problem)
            return cls(gateway_url, data_dir, problem=problem)
        self = cls(gateway_url, data_dir, port=port, open_browser=open_browser)
        self._install_stop_hooks()
        self._thread = threading.Thread(target=self._run, name="antiapi-webview", daemon=True)
        self._thread.start()
        return self

    @property
    def base_url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None

    def current_url(self) -> str | None:
        """The view's address while it runs and answers, else None (for ``create_app(web_url=…)``)."""
        return self.base_url if self._ready and not self._stopping.is_set() else None

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None else None

    def banner_line(self) -> str:
        if self.problem:
            return f"  web dashboard: {self.problem}"
        return (f"  web dashboard: {self.base_url}/ (Auto-open: your browser gets a one-time link; "
                f"--no-open skips it; log {self.log_path})")

    def stop(self) -> None:
        """Stop the view and its dashboards (process group: SIGTERM, then SIGKILL), for good."""
        self._stopping.set()
        self._ready = False
        with self._lock:
            proc = self._proc
            if proc is None or _exited(proc):
                proc_alive = False
            else:
                proc_alive = True
                log.info("stopping the web dashboard (pid %s)", proc.pid)
                self._signal_group(proc, signal.SIGTERM)
        if proc is not None:
            if proc_alive:
                deadline = time.monotonic() + STOP_GRACE
                while not _exited(proc) and time.monotonic() < deadline:
                    time.sleep(0.05)
            with self._lock:
                # dashboards that outlived the view, or a view that ignored SIGTERM (the group
                # leader is not reaped yet, so its process group id cannot have been reused)
                if proc.returncode is None:
                    self._signal_group(proc, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(2)

    # ------------------------------------------------------------------ the child

    @staticmethod
    def _signal_group(proc: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _spawn(self, port: int, login_code: str, fresh_log: bool) -> subprocess.Popen | None:
        cmd = [self.python, "-m", "antiapi.tui", "--web", "--url", self.gateway_url,
               "--token-file", str(self.token_file), "--web-host", "127.0.0.1", "--web-port", str(port)]
        env = {**os.environ, LOGIN_CODE_ENV: login_code, PARENT_PID_ENV: str(os.getpid())}
        env.setdefault("PYTHONUNBUFFERED", "1")
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if fresh_log else os.O_APPEND), 0o600)
        try:
            with self._lock:
                if self._stopping.is_set():
                    return None
                proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, env=env,
                    start_new_session=True,  # its own process group (and no controlling terminal)
                    close_fds=True,
                )
                self._proc = proc
        finally:
            os.close(fd)
        log.info("web dashboard started (pid %s) on http://127.0.0.1:%s/", proc.pid, port)
        return proc

    def _answers(self, port: int) -> bool:
        """The view at ``port`` answers like antiapi's (the token page)."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/", headers={"Host": f"127.0.0.1:{port}"})
            resp = conn.getresponse()
            body = resp.read(4096).decode("utf-8", "replace")
            return resp.status == 401 and "antiapi dashboard" in body
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _wait_ready(self, proc: subprocess.Popen, port: int) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._stopping.is_set() and time.monotonic() < deadline:
            if _exited(proc):
                return False
            if self._answers(port):
                return True
            self._stopping.wait(0.1)
        return False

    def _wait_gateway(self) -> None:
        parts = urlsplit(self.gateway_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        deadline = time.monotonic() + GATEWAY_TIMEOUT
        while not self._stopping.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
                return
            self._stopping.wait(0.1)

    def _run(self) -> None:
        try:
            self._supervise()
        except Exception:  # pragma: no cover - never take the gateway down
            log.exception("web dashboard: the supervisor failed")
            self._ready = False

    def _supervise(self) -> None:
        self._wait_gateway()
        failures = 0  # deaths since the view last ran RESET_AFTER seconds
        first = True
        port_moves = 0
        while not self._stopping.is_set():
            port = self.port
            assert port is not None
            code = secrets.token_urlsafe(24)
            proc = self._spawn(port, code, fresh_log=first)
            if proc is None:
                return
            started = time.monotonic()
            ready = self._wait_ready(proc, port)
            if self._stopping.is_set():
                return
            if ready:
                self._ready = True
                port_moves = 0
                if first:
                    link = f"http://127.0.0.1:{port}/?code={code}"
                    threading.Thread(target=self._announce, args=(link,), name="antiapi-webview-open", daemon=True).start()
                first = False
                while not self._stopping.is_set() and not _exited(proc):
                    self._stopping.wait(0.5)
                self._ready = False
                if self._stopping.is_set():
                    return
            with self._lock:
                if self._stopping.is_set():
                    return
                # a view that did not answer in time, and dashboards left behind by one that died
                # (before reaping it: until then its process group id cannot be reused)
                self._signal_group(proc, signal.SIGKILL)
                rc = proc.wait()
            tail = _log_tail(self.log_path)
            if not ready and not _port_free(port) and port_moves < PORT_TRIES:
                # someone took the port between the check and the start: the next one, at once
                nxt = pick_port(port + 1)
                if nxt is not None:
                    log.warning("web dashboard: port %s is taken; trying %s", port, nxt)
                    self.port, port_moves = nxt, port_moves + 1
                    continue
            if time.monotonic() - started >= RESET_AFTER:
                failures = 0
            failures += 1
            if failures > MAX_RESTARTS:
                log.error("web dashboard: stopped restarting it after %s failures (exit code %s); see %s%s",
                          MAX_RESTARTS, rc, self.log_path, f":\n{tail}" if tail else "")
                return
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
            self.restarts += 1
            log.warning("web dashboard %s (exit code %s); restarting in %.0fs%s",
                        "exited" if ready else "did not start", rc, delay, f":\n{tail}" if tail else "")
            if self._stopping.wait(delay):
                return

    # ------------------------------------------------------------------ the browser

    def _announce(self, link: str) -> None:
        """Open the browser at ``link`` (once), or log the link when no browser can be opened."""
        self.link = link
        if self.open_browser and self._open_browser(link):
            log.info("web dashboard opened in the browser (http://127.0.0.1:%s/)", self.port)
            return
        log.warning("web dashboard: no browser could be opened; open %s (works once; afterwards "
                    "http://127.0.0.1:%s/ asks for the admin token in %s)", link, self.port, self.token_file)

    def _open_browser(self, link: str, wait: float = 15.0) -> bool:
        """Run :func:`_browser_main` in a detached helper process (its own session: a console
        browser cannot take over this terminal), giving it the link on stdin."""
        try:
            helper = subprocess.Popen(
                [self.python, "-m", "antiapi.webview_launcher", "--open-browser"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True,
            )
            assert helper.stdin is not None
            helper.stdin.write(link.encode() + b"\n")
            helper.stdin.close()
        except OSError as e:
            log.warning("web dashboard: cannot run the browser helper: %s", e)
            return False
        try:
            rc = helper.wait(wait)
        except subprocess.TimeoutExpired:
            # webbrowser waits for some browsers ($BROWSER=firefox) until they are closed
            threading.Thread(target=helper.wait, name="antiapi-browser", daemon=True).start()
            return True
        return rc == 0

    # ------------------------------------------------------------------ stopping with the gateway

    def _install_stop_hooks(self) -> None:
        atexit.register(self.stop)
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is None:
                continue
            try:
                self._prev_handlers[sig] = signal.signal(sig, self._on_signal)
            except (ValueError, OSError):  # pragma: no cover
                pass

    def _on_signal(self, sig: int, frame) -> None:
        """Stop the view, then do what the signal did before (uvicorn installs its own handler
        while serving and re-raises the signal with this one after its graceful shutdown)."""
        self.stop()
        prev = self._prev_handlers.get(sig, signal.SIG_DFL)
        if callable(prev):
            prev(sig, frame)
            return
        if prev == signal.SIG_IGN:
            return
        signal.signal(sig, signal.SIG_DFL)
        signal.raise_signal(sig)


def _browser_main() -> int:
    """``python -m antiapi.webview_launcher --open-browser`` (the link on stdin): 0 when a
    browser took it, 3 when there is none."""
    import webbrowser

    link = sys.stdin.readline().strip()
    if not link:
        return 2
    graphical = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if not os.environ.get("BROWSER") and not graphical and sys.platform not in ("darwin", "win32"):
        return _NO_BROWSER  # only console browsers could open it, and they need a terminal
    try:
        return 0 if webbrowser.open(link) else _NO_BROWSER
    except webbrowser.Error:
        return _NO_BROWSER


if __name__ == "__main__":  # pragma: no cover - the browser helper
    if sys.argv[1:] == ["--open-browser"]:
        raise SystemExit(_browser_main())
    raise SystemExit("usage: python -m antiapi.webview_launcher --open-browser  (the link on stdin)")
