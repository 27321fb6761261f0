"""The real mover against an S3 repository: a local S3 server (gofakes3, built by `make engine`)
on loopback, a Garage-like plain-HTTP endpoint, and seed 000's per-app prefix reproduced."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from components.config import ConfigError
from tools.policy import run_policies

from . import controller
from .cluster import ok, tree, write_tree
from .conftest import Objects, render, secret_of, stack_config
from .database import free_port, wait_for_port
from .mover import ENGINE_BIN, MoverRun, run

BUCKET = "volsync"


@pytest.fixture
def s3(engine: Path) -> Iterator[str]:
    """A gofakes3 server on 127.0.0.1 with the bucket, in memory (its fs backend cannot list
    prefixes that hold a '/'); its endpoint URL."""
    port = free_port()
    server = subprocess.Popen(
        [str(ENGINE_BIN / "gofakes3"), "-backend", "memory", "-host", f"127.0.0.1:{port}", "-initialbucket", BUCKET],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, server, "the local S3 server (gofakes3)")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def keys(endpoint: str) -> list[str]:
    """Every object key in the bucket (ListObjectsV2; the test server takes no signature)."""
    with urllib.request.urlopen(f"{endpoint}/{BUCKET}?list-type=2&max-keys=1000", timeout=10) as answer:
        document = ElementTree.fromstring(answer.read())
    return sorted(node.text or "" for node in document.iter() if node.tag.endswith("}Key") or node.tag == "Key")


def garage(endpoint: str) -> dict:
    """A Garage-style repository: plain HTTP on a private address, an existing bucket."""
    return {"name": "garage", "backend": "garage", "s3": {"endpoint": endpoint, "bucket": BUCKET},
            "credentials": {"accessKeyId": "e2e-access-key", "secretAccessKey": "e2e-secret-key"},
            "manageBucket": False, "schedule": "hourly", "retain": {"hourly": 24, "daily": 7}, "primary": True}


def mover(objects: Objects, kind: str, namespace: str, name: str, data: Path, cache: Path,
          secret: dict[str, str] | None = None) -> MoverRun:
    body = objects[(kind, namespace, name)]
    secret = secret or secret_of(objects, namespace, body["spec"]["kopia"]["repository"])
    job = (controller.source_job if kind == "ReplicationSource" else controller.destination_job)(body, secret)
    return run(job, {}, data, cache)


def test_two_apps_back_up_to_one_bucket_root_and_restore_their_own_data(s3, folders: Callable[[str], Path]):
    endpoint = s3
    objects = render("mover", repositories=[garage(endpoint)])
    secret = secret_of(objects, "media", "volsync-kopia-garage")
    assert secret["KOPIA_S3_DISABLE_TLS"] == "true" and secret["KOPIA_REPOSITORY"] == f"s3://{BUCKET}/"
    radarr = write_tree(folders("pvc/radarr"), 1000, {"radarr.db": b"radarr data\n"})
    sabnzbd = write_tree(folders("pvc/sabnzbd"), 568, {"sabnzbd.ini": b"[misc]\n"})
    ok(mover(objects, "ReplicationSource", "media", "radarr-garage", folders("pvc/radarr"), folders("c/1")))
    ok(mover(objects, "ReplicationSource", "media", "sabnzbd-garage", folders("pvc/sabnzbd"), folders("c/2")))
    assert "kopia.repository" in keys(endpoint)  # one repository, at the bucket root
    ok(mover(objects, "ReplicationDestination", "media", "radarr-bootstrap", folders("r/radarr"), folders("c/3")))
    ok(mover(objects, "ReplicationDestination", "media", "sabnzbd-bootstrap", folders("r/sabnzbd"), folders("c/4")))
    assert tree(folders("r/radarr")) == radarr and tree(folders("r/sabnzbd")) == sabnzbd


def test_a_per_app_prefix_is_a_repository_of_its_own_that_restores_nothing_and_is_refused(s3, folders):
    """Seed 000: a prefix per app. The seed's mover lost the trailing slash (`radarrkopia.repository`
    among everyone's objects); the v0.17.11 mover adds it back, so the prefix now makes a second
    repository, `radarr/kopia.repository`, beside the shared one. The shared repository's
    maintenance never sees it, and a bootstrap from the shared repository finds nothing: the
    mover exits 0 with an empty volume."""
    endpoint = s3
    objects = render("mover", repositories=[garage(endpoint)])
    shared = secret_of(objects, "media", "volsync-kopia-garage")
    per_app = {**shared, "KOPIA_REPOSITORY": f"s3://{BUCKET}/radarr"}
    write_tree(folders("pvc/radarr"), 1000, {"radarr.db": b"radarr data\n"})
    write_tree(folders("pvc/sabnzbd"), 568, {"sabnzbd.ini": b"[misc]\n"})
    ok(mover(objects, "ReplicationSource", "media", "sabnzbd-garage", folders("pvc/sabnzbd"), folders("c/1")))
    result = ok(mover(objects, "ReplicationSource", "media", "radarr-garage", folders("pvc/radarr"), folders("c/2"), per_app))
    assert "Using S3 prefix: radarr/" in result.output
    assert {"kopia.repository", "radarr/kopia.repository"} <= set(keys(endpoint))
    bootstrap = ok(mover(objects, "ReplicationDestination", "media", "radarr-bootstrap", folders("r"), folders("c/3")))
    assert bootstrap.restored_nothing and tree(folders("r")) == {}
    # Refused as config, and by the pack for a Secret that got there another way.
    with pytest.raises(ConfigError, match=r"backups:repositories\[0\]\.s3\.bucket: 'volsync/radarr/' has a path"):
        render("mover", repositories=[{**garage(endpoint), "s3": {"endpoint": endpoint, "bucket": "volsync/radarr/"}}])
    from tests.conftest import registration

    handmade = registration("kubernetes:core/v1:Secret", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "volsync-kopia-radarr", "namespace": "media"},
        "stringData": per_app}, secret_fields=("stringData",))
    report = run_policies([handmade])
    assert [v.policy for v in report.mandatory] == ["kopia-repository-at-bucket-root"]


def test_movers_of_an_s3_repository_keep_the_apps_uid(s3):
    endpoint = s3
    objects = render("mover", repositories=[garage(endpoint)])
    body = objects[("ReplicationSource", "media", "sabnzbd-garage")]
    job = controller.source_job(body, secret_of(objects, "media", "volsync-kopia-garage"))
    assert (job.run_as_user, job.groups) == (568, (568,))
    assert stack_config("mover")["apps"][1]["runAsUser"] == 568
