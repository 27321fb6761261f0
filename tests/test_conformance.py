"""Every object the dev stack renders is one the real API server and controllers accept."""

from __future__ import annotations

import pytest

from tools.preview import kubernetes_object

from . import conformance
from .conftest import dev_config


def manifests(run):
    return [m for m in (kubernetes_object(r) for r in run.registrations) if m is not None]


def test_dev_stack_renders_only_conformant_objects(dev_run, crds_dir):
    version = dev_config()["kubernetes"]["version"]
    rendered = manifests(dev_run)
    kinds = {m["kind"] for m in rendered}
    assert {"ReplicationSource", "ReplicationDestination", "KopiaMaintenance", "Secret", "PersistentVolumeClaim"} <= kinds
    found = [p for m in rendered for p in conformance.problems(m, crds_dir, version)]
    assert found == []


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda spec: spec["kopia"].update(repositoryPVC="kopia"), "repositoryPVC"),  # removed upstream
        (lambda spec: spec["kopia"].update(copyMethod="Snapshots"), "Snapshots"),
        (lambda spec: spec["kopia"]["retain"].update(daily="seven"), "seven"),
    ],
)
def test_the_check_catches_what_the_crd_rejects_or_prunes(dev_run, crds_dir, mutate, expected):
    source = next(m for m in manifests(dev_run) if m["kind"] == "ReplicationSource")
    mutate(source["spec"])
    found = list(conformance.problems(source, crds_dir, "1.35"))
    assert any(expected in p for p in found), found


def test_core_objects_are_checked_too(dev_run, crds_dir):
    claim = next(m for m in manifests(dev_run) if m["kind"] == "PersistentVolumeClaim")
    claim["spec"]["storageClass"] = "typo"
    assert list(conformance.problems(claim, crds_dir, "1.35"))
