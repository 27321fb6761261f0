"""etcd and a real kube-apiserver on loopback, for the e2e tests and the engine bench, with a
small client.

Certificates are made by the test with openssl: a CA, the server's (127.0.0.1), an admin
client in system:masters, and the service-account key pair. Both servers listen on 127.0.0.1
only, in a folder of the test's; nothing else runs (no controller manager, no kubelet), so
objects are accepted or refused by the API server and its admission alone.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from .engine import BIN as ENGINE_BIN


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder: Path) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-subj", "/CN=e2e-ca", "-days", "2", cwd=folder)
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, subject, extra in (("server", "/CN=kube-apiserver", ["-extfile", "server.ext"]),
                                 ("admin", "/CN=admin/O=system:masters", [])):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subject, cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", *extra, cwd=folder)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=folder)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=folder)


@dataclass
class ApiServer:
    version: str
    """Kubernetes minor version, like "1.36": .engine/bin/kube-apiserver-<version>."""
    folder: Path
    extra_flags: tuple[str, ...] = ()
    port: int = 0
    _resources: dict[str, dict[str, tuple[str, bool]]] = field(default_factory=dict)

    _etcd: Optional[subprocess.Popen[bytes]] = None
    _apiserver: Optional[subprocess.Popen[bytes]] = None
    _etcd_ports: tuple[int, int] = (0, 0)

    def start(self) -> ApiServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        make_certificates(self.folder)
        self._etcd_ports, self.port = (free_port(), free_port()), free_port()
        self.start_etcd()
        return self.start_apiserver()

    def start_etcd(self) -> None:
        """etcd on the same ports and data directory each time (a restart keeps the data)."""
        client, peer = self._etcd_ports
        etcd_log = (self.folder / "etcd.log").open("ab")
        self._etcd = subprocess.Popen(
            [str(ENGINE_BIN / "etcd"), "--name=e2e", f"--data-dir={self.folder / 'etcd'}",
             f"--listen-client-urls=http://127.0.0.1:{client}", f"--advertise-client-urls=http://127.0.0.1:{client}",
             f"--listen-peer-urls=http://127.0.0.1:{peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
             f"--initial-cluster=e2e=http://127.0.0.1:{peer}", "--log-level=warn"],
            stdout=etcd_log, stderr=subprocess.STDOUT)

    def start_apiserver(self) -> ApiServer:
        f = self.folder
        api_log = (self.folder / "apiserver.log").open("ab")
        self._apiserver = subprocess.Popen(
            [str(ENGINE_BIN / f"kube-apiserver-{self.version}"), f"--etcd-servers=http://127.0.0.1:{self._etcd_ports[0]}",
             "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
             f"--tls-cert-file={f / 'server.crt'}", f"--tls-private-key-file={f / 'server.key'}",
             f"--client-ca-file={f / 'ca.crt'}", f"--cert-dir={f / 'certs'}",
             "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
             f"--service-account-key-file={f / 'sa.pub'}", f"--service-account-signing-key-file={f / 'sa.key'}",
             "--service-cluster-ip-range=10.96.0.0/24", "--authorization-mode=RBAC", *self.extra_flags],
            stdout=api_log, stderr=subprocess.STDOUT)
        self.wait_ready()
        return self

    def wait_ready(self, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in self._processes):
                raise RuntimeError("the API server did not become ready:\n" + (self.folder / "apiserver.log").read_text()[-3000:])
            time.sleep(0.5)

    @property
    def _processes(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in (self._etcd, self._apiserver) if p is not None]

    def stop_apiserver(self) -> None:
        _ended(self._apiserver)
        self._apiserver = None

    def restart_etcd(self) -> None:
        """etcd stopped and started again under the running API server, which reconnects."""
        _ended(self._etcd)
        self.start_etcd()
        self.wait_ready()

    def stop(self) -> None:
        _ended(self._apiserver)
        _ended(self._etcd)
        self._apiserver = self._etcd = None

    def kubeconfig(self, path: Path, token: Optional[str] = None) -> Path:
        """A kubeconfig for the admin client (system:masters), as the Pulumi provider reads one; or,
        given a ServiceAccount `token`, for that account (what its RBAC allows, and nothing else)."""
        f = self.folder
        user = ({"token": token} if token is not None
                else {"client-certificate": str(f / "admin.crt"), "client-key": str(f / "admin.key")})
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "e2e",
            "clusters": [{"name": "e2e", "cluster": {"server": f"https://127.0.0.1:{self.port}",
                                                     "certificate-authority": str(f / "ca.crt")}}],
            "users": [{"name": "admin", "user": user}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "admin"}}],
        }))
        return path

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.folder / "ca.crt"))
        context.load_cert_chain(str(self.folder / "admin.crt"), str(self.folder / "admin.key"))
        return context

    def request(self, method: str, path: str, body: Optional[Any] = None,
                content_type: str = "application/json") -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"https://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": content_type, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self._context(), timeout=30) as answer:
                text = answer.read()
                status = answer.status
        except urllib.error.HTTPError as error:
            text, status = error.read(), error.code
        try:
            return status, json.loads(text) if text else None
        except json.JSONDecodeError:
            return status, text.decode(errors="replace")

    def _path(self, manifest: dict[str, Any]) -> str:
        api_version, kind = manifest["apiVersion"], manifest["kind"]
        if api_version not in self._resources:
            base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            status, listing = self.request("GET", base)
            if status != 200:
                raise LookupError(f"{api_version} is not served: {status} {listing}")
            self._resources[api_version] = {r["kind"]: (r["name"], r["namespaced"]) for r in listing["resources"] if "/" not in r["name"]}
        plural, namespaced = self._resources[api_version][kind]
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        meta = manifest["metadata"]
        scope = f"/namespaces/{meta.get('namespace', 'default')}" if namespaced else ""
        return f"{base}{scope}/{plural}/{meta['name']}"

    def apply(self, manifest: dict[str, Any], dry_run: bool = False) -> tuple[int, Any]:
        """Server-side apply, as `kubectl apply --server-side` does."""
        query = "?fieldManager=homelab-backups&force=true" + ("&dryRun=All" if dry_run else "")
        return self.request("PATCH", self._path(manifest) + query, manifest, "application/apply-patch+yaml")

    def create(self, manifest: dict[str, Any], dry_run: bool = False) -> tuple[int, Any]:
        path = self._path(manifest).rsplit("/", 1)[0] + ("?dryRun=All" if dry_run else "")
        return self.request("POST", path, manifest)

    def install_crds(self, crds: Path) -> int:
        """Every CustomResourceDefinition under `crds`, applied and Established."""
        names = []
        for path in sorted(crds.rglob("*.yaml")):
            for document in yaml.safe_load_all(path.read_text()):
                if document and document.get("kind") == "CustomResourceDefinition":
                    status, body = self.apply(document)
                    if status >= 300:
                        raise RuntimeError(f"CRD {document['metadata']['name']}: {status} {body}")
                    names.append(document["metadata"]["name"])
        deadline = time.monotonic() + 60
        for name in names:
            while True:
                _, body = self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                conditions = {c["type"]: c["status"] for c in (body or {}).get("status", {}).get("conditions", [])}
                if conditions.get("Established") == "True":
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"CRD {name} never became Established")
                time.sleep(0.2)
        self._resources.clear()
        return len(names)


def _ended(process: Optional[subprocess.Popen[bytes]]) -> None:
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ForegroundDeletion:
    """The garbage collector's part in a foreground deletion, which no controller manager here
    does: an object deleted with `propagationPolicy: Foreground` (as the Pulumi provider deletes)
    keeps its `foregroundDeletion` finalizer until the collector has removed its dependents.
    The program's objects have none, so the collector would remove the finalizer at once; this
    does that, for the kinds listed, on a thread, until stopped."""

    def __init__(self, server: ApiServer, collections: tuple[str, ...]) -> None:
        self.server, self.collections = server, collections
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ForegroundDeletion:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            for collection in self.collections:
                try:
                    status, listing = self.server.request("GET", collection)
                except OSError:
                    continue  # the API server is down for a fault test: try again
                if status != 200:
                    continue
                for item in listing.get("items", []):
                    meta = item["metadata"]
                    if meta.get("deletionTimestamp") and meta.get("finalizers") == ["foregroundDeletion"]:
                        scope = f"/namespaces/{meta['namespace']}" if meta.get("namespace") else ""
                        base, plural = collection.rsplit("/", 1)
                        patch = [{"op": "test", "path": "/metadata/finalizers", "value": ["foregroundDeletion"]},
                                 {"op": "remove", "path": "/metadata/finalizers"}]
                        with contextlib.suppress(OSError):
                            self.server.request("PATCH", f"{base}{scope}/{plural}/{meta['name']}", patch,
                                                "application/json-patch+json")
