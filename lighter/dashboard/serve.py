"""Start the dashboard server for `lighter dashboard OUT`: check the folder and port, say where to look, serve."""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path

LOCAL_HOSTS = ("localhost",)


class ServeError(Exception):
    """Why the server cannot start, with what to do instead."""


def is_local(host: str) -> bool:
    """True when only this machine can reach `host`."""
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the server starts, so `--port 0` can pick a free port and be printed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ServeError(f"--host {host}: cannot resolve it ({err.strerror}); try --host 127.0.0.1") from err
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        hint = "another program is using it; pick another with --port (0 picks a free one)"
        raise ServeError(f"cannot listen on {host}:{port}: {err.strerror}; {hint}") from err
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url(host: str, port: int) -> str:
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def serve(out: str | Path, port: int = 8050, host: str = "127.0.0.1", allow_hosts: tuple[str, ...] = ()) -> None:
    """Serve the runs under `out` until interrupted."""
    root = Path(out).expanduser()
    if not root.is_dir():
        what = "a file" if root.exists() else "missing"
        raise ServeError(f"{out}: {what}; give the folder holding your runs, e.g. `lighter dashboard runs/`")
    if not 0 <= port <= 65535:
        raise ServeError(f"--port {port}: a port is 0 to 65535 (0 picks a free one)")
    sock = bind(host, port)

    import uvicorn  # lazy: the web stack, loaded once the arguments are checked

    from lighter.dashboard.app import create_app  # lazy: the web stack, loaded once the arguments are checked

    app = create_app(root, host=host, allow_hosts=allow_hosts)
    port = sock.getsockname()[1]
    if not is_local(host):
        print(
            f"lighter dashboard: warning: --host {host} opens the dashboard to the network: anyone who can reach "
            f"this machine on port {port} can read every run under {root}. Use --host 127.0.0.1 and an SSH tunnel "
            "to keep it private.",
            file=sys.stderr,
            flush=True,
        )
    runs = app.state.store.runs()  # read every run's record once now, so the page's first request is quick
    print(f"lighter dashboard: serving {len(runs)} runs under {app.state.store.root}", flush=True)
    print(f"  open {url(host, port)}  (Ctrl+C stops it)", flush=True)
    if is_local(host):
        print(f"  from another machine: ssh -L {port}:localhost:{port} <this host>, then open that URL", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
