"""A real PostgreSQL server from the Debian packages, on a temporary data directory and a free
port on 127.0.0.1, for tests of the production profile.

PostgreSQL refuses to run as root, so when the tests run as root the server's data directory
belongs to ``nobody`` and its programs run as that user (``setpriv``). The server takes password
logins (scram-sha-256) over TCP, as a deployment's would; the password is generated per server.
"""

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2

UNPRIVILEGED_UID = 65534  # nobody
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    username: str
    password: str
    db_name: str

    def env(self) -> dict[str, str]:
        """The ``DAGSTER_PG_*`` variables deploy/dagster.yaml reads."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USERNAME": self.username,
                "DAGSTER_PG_PASSWORD": self.password, "DAGSTER_PG_DB": self.db_name}

    def connect(self) -> "psycopg2.extensions.connection":
        return psycopg2.connect(host=self.host, port=self.port, user=self.username, password=self.password,
                                dbname=self.db_name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin() -> Path | None:
    """The newest installed ``/usr/lib/postgresql/<version>/bin``, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["setpriv", f"--reuid={UNPRIVILEGED_UID}", f"--regid={UNPRIVILEGED_UID}", "--clear-groups", *command]


@contextmanager
def postgres_server(db_name: str = "dagster") -> Iterator[Postgres]:
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql); .ci/run installs it")
    root = Path(tempfile.mkdtemp(prefix="quant-pg-"))
    root.chmod(0o755)  # the server user must reach its directories
    data, sockets, pwfile = root / "data", root / "sockets", root / "password"
    password = secrets.token_urlsafe(24)
    pwfile.write_text(password + "\n")
    sockets.mkdir()
    if os.geteuid() == 0:
        for path in (root, sockets, pwfile):
            os.chown(path, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
    server = None
    try:
        subprocess.run(
            _as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", "dagster", f"--pwfile={pwfile}",
                             "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync"]),
            check=True, capture_output=True, text=True,
        )
        port = free_port()
        server = subprocess.Popen(
            _as_server_user([str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
                             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"]),
            stdout=subprocess.DEVNULL, stderr=(root / "server.log").open("w"),
        )
        pg = Postgres("127.0.0.1", port, "dagster", password, db_name)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                conn = psycopg2.connect(host=pg.host, port=port, user=pg.username, password=password,
                                        dbname="postgres")
                conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
                conn.cursor().execute(f'CREATE DATABASE "{db_name}"')
                conn.close()
                break
            except psycopg2.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not start: {(root / 'server.log').read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield pg
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(root, ignore_errors=True)
