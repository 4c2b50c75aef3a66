"""Stand-in executables for the tunnel tools (``ngrok``, ``cloudflared``, ``lt``).

These are stand-ins because the real ngrok, cloudflared and localtunnel services cannot be reached
from the test machines. Each stand-in is a small Python script that prints its public URL exactly
the way the real tool does (ngrok: a JSON ``"started tunnel"`` log line on stdout; cloudflared: the
quick-tunnel box on stderr; lt: ``your url is: ...``), and can crash, hang, serve ngrok's local
agent API, or really forward TCP to the local port it was given.

Use::

    bindir = make_bindir(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    t = Tunnel("cloudflared", port, env={"STANDIN_MODE": "forward", "STANDIN_FORWARD_FILE": str(f)})
    await t.start()
    port = forward_port(f)      # send HTTP to 127.0.0.1:port: it arrives at `port` from 127.0.0.1

Environment (passed through ``Tunnel(env=...)``, which merges into the child's environment):

* ``STANDIN_MODE``: comma-separated modes, default ``ok``:

  - ``ok``: print the URL, then run until stopped.
  - ``fail``: print an ngrok-style authentication error on stderr and exit 1 at once.
  - ``hang``: print a first log line but never a URL.
  - ``crash``: print the URL, exit 3 after ``STANDIN_CRASH_AFTER`` seconds (default 0.3).
  - ``crash_once``: like ``crash`` on the first run only (run number from ``STANDIN_LOG``).
  - ``ngrok_api`` (ngrok): run a tiny HTTP server on an ephemeral 127.0.0.1 port answering
    ``GET /api/tunnels`` like ngrok's agent API, log ``"starting web service"`` with its address,
    and never log ``"started tunnel"``. The first ``STANDIN_API_EMPTY`` answers (default 1) list no
    tunnels (as while the real tunnel is coming up); later ones list a tunnel of some other agent
    (``config.addr`` port 1, must be ignored), then the http and https URLs for our port.
  - ``forward``: behave like ``ok`` and also listen on an ephemeral 127.0.0.1 port relaying every
    TCP connection to the local target port from the command line (ngrok ``http://127.0.0.1:PORT``,
    cloudflared ``--url http://127.0.0.1:PORT``, lt ``--port PORT``). Combine as
    ``forward,ngrok_api`` to get the URL from the API only.

* ``STANDIN_LOG``: optional file; each run appends a JSON line ``{"argv", "t", "n", "token"}``
  (``token`` = ``NGROK_AUTHTOKEN``); ``n`` (the run number, 1-based) is counted from it, and is
  always 1 without it. The URLs contain it: ``https://run{n}.ngrok-free.app``,
  ``https://run{n}-calm-words.trycloudflare.com``, ``https://run{n}.loca.lt``.
* ``STANDIN_FORWARD_FILE``: ``forward`` writes its listening port there (atomically, before the URL
  is printed, so it exists once ``Tunnel.start()`` returns; rewritten on every restart).
* ``STANDIN_NGROK_WEB_ADDR``: ngrok: log this as the ``"starting web service"`` addr instead (the
  API server, if any, still listens on 127.0.0.1).
* ``STANDIN_CRASH_AFTER``, ``STANDIN_API_EMPTY``: see above.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

__all__ = ["STANDIN", "TOOL_NAMES", "forward_port", "make_bindir"]

TOOL_NAMES = ("ngrok", "cloudflared", "lt")

# The first line is replaced by ``#!<sys.executable>``.
STANDIN = r'''#!PYTHON
"""Stand-in for ngrok / cloudflared / lt in antiapi's tests (the real services cannot be reached
from the test machines). See tests/tunnels/standins.py."""
import json, os, socket, sys, threading, time

tool = os.path.basename(sys.argv[0])
modes = {m.strip() for m in os.environ.get("STANDIN_MODE", "ok").split(",") if m.strip()} or {"ok"}
log = os.environ.get("STANDIN_LOG")
n = 1
if log:
    n = sum(1 for _ in open(log)) + 1 if os.path.exists(log) else 1
    with open(log, "a") as f:
        f.write(json.dumps({"argv": sys.argv[1:], "t": time.time(), "n": n, "token": os.environ.get("NGROK_AUTHTOKEN")}) + "\n")


def out(s, err=False):
    stream = sys.stderr if err else sys.stdout
    stream.write(s + "\n")
    stream.flush()


def target_port():
    args = sys.argv[1:]
    if tool == "ngrok":
        addr = next(a for a in args[1:] if not a.startswith("-"))
    elif tool == "cloudflared":
        addr = args[args.index("--url") + 1]
    else:
        return int(args[args.index("--port") + 1])
    return int(addr.rstrip("/").rsplit(":", 1)[1])


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def relay(client, port):
    try:
        upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
        upstream.settimeout(None)
    except OSError:
        client.close()
        return
    t = threading.Thread(target=pump, args=(client, upstream), daemon=True)
    t.start()
    pump(upstream, client)
    t.join(30)
    client.close()
    upstream.close()


def forward(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    listen = srv.getsockname()[1]

    def accept():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=relay, args=(c, port), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    path = os.environ.get("STANDIN_FORWARD_FILE")
    if path:
        with open(path + ".tmp", "w") as f:
            f.write(str(listen))
        os.replace(path + ".tmp", path)


def api_server(port, url):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    empty = [int(os.environ.get("STANDIN_API_EMPTY", "1"))]
    local = "http://127.0.0.1:%d" % port

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.rstrip("/") != "/api/tunnels":
                self.send_error(404)
                return
            if empty[0] > 0:
                empty[0] -= 1
                tunnels = []
            else:
                tunnels = [
                    {"name": "someone-else", "uri": "/api/tunnels/someone-else", "public_url": "https://someone-else.ngrok-free.app",
                     "proto": "https", "config": {"addr": "http://127.0.0.1:1", "inspect": True}},
                    {"name": "command_line (http)", "uri": "/api/tunnels/command_line%20%28http%29",
                     "public_url": url.replace("https://", "http://"), "proto": "http", "config": {"addr": local, "inspect": True}},
                    {"name": "command_line", "uri": "/api/tunnels/command_line", "public_url": url,
                     "proto": "https", "config": {"addr": local, "inspect": True}},
                ]
            body = json.dumps({"tunnels": tunnels, "uri": "/api/tunnels"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return "http://127.0.0.1:%d" % srv.server_address[1]


if "fail" in modes:
    out("ERROR: authentication failed: Usage of ngrok requires a verified account and authtoken.", err=True)
    sys.exit(1)
port = target_port()
if "forward" in modes:
    forward(port)
hang = "hang" in modes
if tool == "ngrok":
    url = "https://run%d.ngrok-free.app" % n
    out(json.dumps({"lvl": "info", "msg": "open config file", "obj": "app"}))
    web = api_server(port, url) if "ngrok_api" in modes else None
    web = os.environ.get("STANDIN_NGROK_WEB_ADDR") or web
    if web:
        out(json.dumps({"addr": web, "allow_hosts": [], "lvl": "info", "msg": "starting web service", "obj": "web",
                        "t": "2026-01-01T00:00:00Z"}))
    if not hang and "ngrok_api" not in modes:
        out(json.dumps({"addr": "http://127.0.0.1:%d" % port, "lvl": "info", "msg": "started tunnel", "name": "command_line",
                        "obj": "tunnels", "t": "2026-01-01T00:00:00Z", "url": url}))
elif tool == "cloudflared":
    out("2026-01-01T00:00:00Z INF Requesting new quick Tunnel on trycloudflare.com...", err=True)
    if not hang:
        out("2026-01-01T00:00:00Z INF +------------------------------------------------------------+", err=True)
        out("2026-01-01T00:00:00Z INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |", err=True)
        out("2026-01-01T00:00:00Z INF |  https://run%d-calm-words.trycloudflare.com                 |" % n, err=True)
else:  # lt
    if not hang:
        out("your url is: https://run%d.loca.lt" % n)
if "crash" in modes or ("crash_once" in modes and n == 1):
    time.sleep(float(os.environ.get("STANDIN_CRASH_AFTER", "0.3")))
    sys.exit(3)
while True:
    time.sleep(1)
'''


def make_bindir(path: pathlib.Path) -> pathlib.Path:
    """Write the executable stand-ins ``ngrok``, ``cloudflared`` and ``lt`` into ``path`` (created if
    needed) and return it; put it first on PATH. Stand-ins, because the real tunnel services cannot
    be reached from the test machines."""
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    text = STANDIN.replace("#!PYTHON", f"#!{sys.executable}", 1)
    for name in TOOL_NAMES:
        p = path / name
        p.write_text(text)
        p.chmod(0o755)
    return path


def forward_port(path: os.PathLike[str] | str, timeout: float = 5.0) -> int:
    """The port a ``forward`` stand-in listens on (read from ``STANDIN_FORWARD_FILE``), waiting up to
    ``timeout`` seconds for the file."""
    deadline = time.monotonic() + timeout
    p = pathlib.Path(path)
    while True:
        try:
            return int(p.read_text().strip())
        except (OSError, ValueError):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no forward port in {p} after {timeout:g} s") from None
            time.sleep(0.05)
