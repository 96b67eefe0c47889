"""Which requests the dashboard answers: those addressed to it by its own name, and writes from its own page only.

A web page the user visits elsewhere can make the browser send requests to 127.0.0.1: after a DNS rebinding its
own name points there, so the request carries `Host: attacker.example` (refused below), and a plain form or
`fetch` may POST across sites (refused by its `Origin`, `Sec-Fetch-Site` or a content type other than JSON, which a
page can only send cross-site after a CORS preflight that this server never answers).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("0.0.0.0", "::", "")  # every address of this machine
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SAME_SITE = ("same-origin", "none")  # `none`: typed in the address bar or opened from a bookmark
JSON = "application/json"


def allowed_hosts(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names a request may address the server by: loopback names, the bound address, and `--allow-host`."""
    names = {*LOOPBACK_NAMES, _strip(host)}
    if _strip(host) in WILDCARDS:  # the printed URL uses the machine's name
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    names |= {_strip(name) for name in extra if name.strip()}
    return frozenset(names - {""})


def _strip(name: str) -> str:
    return name.strip().lower().removeprefix("[").removesuffix("]")


def host_name(header: str) -> str:
    """`Host: example.org:8050` -> `example.org`; `[::1]:8050` -> `::1`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header[1:]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _is_ip(name: str, *, loopback: bool) -> bool:
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or not loopback


def refusal(method: str, headers: Mapping[str, str], allowed: frozenset[str]) -> str | None:
    """Why a request is refused, or None when the dashboard answers it. `headers` are lower-case names."""
    host = headers.get("host", "")
    name = host_name(host)
    # A rebinding page's Host is its own domain name; an address typed as digits cannot be rebound, so any address
    # of a server bound to all of them is its own.
    known = name in allowed or _is_ip(name, loopback=not (allowed & set(WILDCARDS)))
    if not known:
        return (
            f"Host {host!r} is not an address of this dashboard ({', '.join(sorted(allowed))}): a web page elsewhere "
            f"may be trying to read your runs through your browser (DNS rebinding). If you open the dashboard by "
            f"this name, start it with --allow-host {name or 'NAME'}"
        )
    if method.upper() in SAFE_METHODS:
        return None
    site = headers.get("sec-fetch-site")
    if site is not None and site.lower() not in SAME_SITE:
        return f"a {site} {method} is refused: only the dashboard's own page may send one (Sec-Fetch-Site: {site})"
    origin = headers.get("origin")
    if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
        return f"a {method} from {origin} is refused: only the dashboard's own page ({host}) may send one"
    kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != JSON:
        return f"a {method} must be sent as Content-Type: {JSON} (got {kind or 'none'}), as the dashboard's page does"
    return None


class Guard:
    """ASGI middleware: answers a refused request with 403 and a JSON error saying why, before any route runs."""

    def __init__(self, app, allowed: frozenset[str]):
        self.app, self.allowed = app, allowed

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            reason = refusal(scope["method"], Headers(scope=scope), self.allowed)
            if reason is not None:
                response = JSONResponse({"error": reason}, status_code=403, headers={"Cache-Control": "no-store"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
