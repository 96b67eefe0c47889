"""A PostgreSQL server in a temporary folder, for the tests of searches whose study lives in a database.

Debian's `postgresql` (`make postgres` installs it) gives `initdb` and `pg_ctl`; they refuse to run as root, so as
root they run as the `postgres` user, in a folder it owns. The server listens on 127.0.0.1 on a free port, with
`fsync=off` (a test database need not survive a power cut), password authentication for the `lighter` role, and
one database, `studies`. It starts in about a second.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROLE = "lighter"
DATABASE = "studies"
MISSING_HINT = "Debian/Ubuntu: apt-get install postgresql (or `make postgres`)"


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return versions[-1] if versions else None


def missing() -> list[str]:
    """The programs this needs and cannot find."""
    lacking = [name for name in ("initdb", "pg_ctl") if _bin(name) is None]
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            lacking.append("the postgres user")
    return lacking


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    folder: Path
    port: int
    password: str

    def url(self, *, with_password: bool = False) -> str:
        secret = f":{self.password}" if with_password else ""
        return f"postgresql+psycopg://{ROLE}{secret}@127.0.0.1:{self.port}/{DATABASE}"

    def stop(self) -> None:
        _as_owner([_bin("pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.folder, ignore_errors=True)


def _as_owner(command: list) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, check=True, timeout=120)


def start() -> Server:
    """Initialise and start a server; `stop()` ends it and removes its folder."""
    folder = Path(tempfile.mkdtemp(prefix="lighter-postgres-"))
    password = secrets.token_hex(12)
    (folder / "password").write_text(password)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        os.chown(folder / "password", user.pw_uid, user.pw_gid)
    data = folder / "data"
    _as_owner([_bin("initdb"), "-D", data, "-U", ROLE, "--pwfile", folder / "password", "-A", "scram-sha-256"])
    port = _free_port()
    options = f"-c fsync=off -c listen_addresses=127.0.0.1 -p {port} -k {folder}"
    _as_owner([_bin("pg_ctl"), "-D", data, "-o", options, "-l", folder / "server.log", "-w", "start"])
    server = Server(folder, port, password)
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=port, user=ROLE, password=password, dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(f"CREATE DATABASE {DATABASE}")
    return server
