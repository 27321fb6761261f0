"""A real PostgreSQL and TLS object stores on loopback, for the pgBackRest tests.

PostgreSQL 15 and pgBackRest come from Debian (`make e2e` installs pgbackrest); the stores are the
project's gofakes3 (built by `make engine`) behind a TLS listener with a certificate from a CA the
test makes, because pgBackRest speaks only HTTPS to S3. Everything runs as the `postgres` user,
as the plugin's sidecar runs pgBackRest as the database's user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .mover import ENGINE_BIN

PG_BIN = Path("/usr/lib/postgresql/15/bin")
USER = "postgres"


def missing() -> list[str]:
    """What the pgBackRest tests need and this machine lacks, each with how to get it."""
    found = []
    if shutil.which("pgbackrest") is None:
        found.append("pgbackrest (Debian's package: `make e2e` installs it)")
    if not (PG_BIN / "postgres").exists():
        found.append(f"PostgreSQL 15 at {PG_BIN} (Debian's postgresql-15)")
    if not (ENGINE_BIN / "gofakes3").exists():
        found.append(f"{ENGINE_BIN}/gofakes3 (`make engine`)")
    if shutil.which("openssl") is None:
        found.append("openssl")
    return found


def owned_folder(root: Path, name: str) -> Path:
    """A folder the postgres user owns (0700, as PostgreSQL wants its data directory)."""
    entry = pwd.getpwnam(USER)
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o700)
    return path


def as_postgres(command: list[str], env: Mapping[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    entry = pwd.getpwnam(USER)
    return subprocess.run(command, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env}, user=entry.pw_uid,
                          group=entry.pw_gid, extra_groups=[], capture_output=True, text=True, timeout=timeout)


def checked(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@dataclass(frozen=True)
class TestCa:
    ca_file: Path
    cert: Path
    key: Path


def make_ca(folder: Path, hosts: list[str]) -> TestCa:
    """A CA and a server certificate for `hosts` (DNS names, wildcards allowed) and 127.0.0.1, as an
    IP and as a DNS name: pgBackRest matches the host it connects to against DNS names only."""
    ca_key, ca_file, key, csr, cert = (folder / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    run = lambda *args: checked(subprocess.run(["openssl", *args], capture_output=True, text=True))  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_file), "-days", "2",
        "-subj", "/CN=homelab-backups e2e CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=e2e-s3")
    extensions = folder / "san.ext"
    extensions.write_text("subjectAltName=" + ",".join([*(f"DNS:{h}" for h in [*hosts, "127.0.0.1"]), "IP:127.0.0.1"]) + "\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_file), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(extensions))
    for path in (ca_file, cert, key):
        path.chmod(0o644)
    return TestCa(ca_file, cert, key)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError(f"{what} did not start") from None
            time.sleep(0.1)


class TlsStore:
    """One object store (standing for B2 or R2): gofakes3 in memory, answering virtual-host
    requests for `endpoint` (the rendered one), behind TLS on its own port."""

    def __init__(self, endpoint: str, ca: TestCa) -> None:
        self.endpoint = endpoint
        self._backend_port, self.port = free_port(), free_port()
        self._server = subprocess.Popen(
            [str(ENGINE_BIN / "gofakes3"), "-backend", "memory", "-host", f"127.0.0.1:{self._backend_port}",
             "-autobucket", "-hostbucketbase", endpoint, "-quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self._backend_port, self._server, f"gofakes3 for {endpoint}")
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(ca.cert, ca.key)
        self._open: set[socket.socket] = set()
        self.up()

    def up(self) -> None:
        """Answer on the store's port (again)."""
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def down(self) -> None:
        """The store unreachable: no listener, and every open connection cut."""
        self._listener.close()
        for connection in list(self._open):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self._open.add(client)
            threading.Thread(target=self._serve, args=(self._context, client), daemon=True).start()

    def _serve(self, context: ssl.SSLContext, client: socket.socket) -> None:
        try:
            secure = context.wrap_socket(client, server_side=True)
            backend = socket.create_connection(("127.0.0.1", self._backend_port))
        except (OSError, ssl.SSLError):
            client.close()
            return
        threading.Thread(target=_pump, args=(backend, secure), daemon=True).start()
        _pump(secure, backend)
        self._open.discard(client)

    def env(self, number: int, ca: TestCa) -> dict[str, str]:
        """What stands for the cluster's DNS and trust store: where repository `number` connects."""
        prefix = f"PGBACKREST_REPO{number}_"
        return {f"{prefix}STORAGE_HOST": "127.0.0.1", f"{prefix}STORAGE_PORT": str(self.port),
                f"{prefix}STORAGE_CA_FILE": str(ca.ca_file)}

    def close(self) -> None:
        self.down()
        self._server.terminate()
        self._server.wait(timeout=10)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()


class Postgres:
    """A PostgreSQL 15 server on a Unix socket, its archive_command the plugin's archive-push."""

    def __init__(self, root: Path, name: str, env: Mapping[str, str]) -> None:
        self.data = root / name / "data"
        self.socket = owned_folder(root, f"{name}/socket")
        self.port = free_port()
        # The pod's own paths: each instance has its spool (async archive-get queues segments
        # there) and lock folder, as each pod does; shared, two servers wait on each other's lock.
        pod = {f"PGBACKREST_{k}_PATH": str(owned_folder(root, f"{name}/{k.lower()}")) for k in ("LOCK", "SPOOL", "LOG")}
        self.env = {**env, **pod, "PGBACKREST_PG1_PATH": str(self.data), "PGBACKREST_PG1_PORT": str(self.port),
                    "PGBACKREST_PG1_SOCKET_PATH": str(self.socket)}
        owned_folder(root, name)
        self.log = self.data.parent / "server.log"

    def initdb(self) -> None:
        checked(as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", USER, "--auth=trust"], self.env))
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(self.settings())

    def settings(self) -> str:
        # What CloudNative-PG sets for a plugin WAL archiver: archive_mode on and an archive_command
        # that hands each segment to the plugin, whose sidecar runs archive-push.
        return (f"port = {self.port}\nlisten_addresses = ''\nunix_socket_directories = '{self.socket}'\n"
                "wal_level = replica\narchive_mode = on\n"
                "archive_command = 'pgbackrest archive-push %p'\n")

    def start(self) -> None:
        started = as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "120",
                               "start"], self.env)
        assert started.returncode == 0, f"PostgreSQL did not start; its log:\n{self.log.read_text()[-4000:]}"

    def stop(self) -> None:
        as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], self.env)

    def sql(self, statement: str) -> str:
        return checked(as_postgres(["psql", "-h", str(self.socket), "-p", str(self.port), "-U", USER, "-d", "postgres",
                                    "-v", "ON_ERROR_STOP=1", "-Atqc", statement], self.env)).strip()

    def pgbackrest(self, *command: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return as_postgres(["pgbackrest", *command], {**self.env, **(env or {})})

    def wait_archived(self) -> str:
        """Switch to a new WAL segment and wait until the archiver has pushed the one it closed."""
        closed = self.sql("SELECT pg_walfile_name(pg_switch_wal())")
        deadline = time.monotonic() + 60
        while self.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") < closed:
            if time.monotonic() > deadline:
                raise AssertionError(f"{closed} was not archived: {self.sql('SELECT * FROM pg_stat_archiver')}")
            time.sleep(0.2)
        return closed


@contextmanager
def running(server: Postgres) -> Iterator[Postgres]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
