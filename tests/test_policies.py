"""The policy pack, run in-process through the SDK's analyzer on what the program registered."""

from __future__ import annotations

import copy

import pytest

from tools.policy import run_policies

from .conftest import dev_config, named, registration, run_config, with_changes

SECRET = "kubernetes:core/v1:Secret"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"


def kopia_secret(namespace: str, password: str, target: str = "nfs://nas.home/mnt/ssdtank/kopia") -> object:
    return registration(SECRET, {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "volsync-kopia-nas", "namespace": namespace,
                     "annotations": {"backups.homelab.dev/target": target}},
        "stringData": {"KOPIA_PASSWORD": password, "KOPIA_REPOSITORY": "filesystem:///mnt/repository"},
    }, secret_fields=("stringData",))


def test_the_dev_stack_passes_every_rule(dev_run):
    report = run_policies(dev_run.registrations)
    assert report.rules_run == 3
    assert report.violations == ()


# -- kopia-shared-password ---------------------------------------------------------------------

def test_a_password_per_app_is_stopped_without_showing_either_password(dev_run):
    # Seed 000's first attempt: ${APP}-volsync-backup-password.
    extra = [kopia_secret("media", "radarr-volsync-backup-password"), kopia_secret("games", "other-password")]
    report = run_policies(dev_run.registrations + extra)
    (violation,) = report.mandatory
    assert violation.policy == "kopia-shared-password"
    assert "3 different KOPIA_PASSWORDs" in violation.message and "nfs://nas.home/mnt/ssdtank/kopia" in violation.message
    for password in ("radarr-volsync-backup-password", "other-password", dev_config()["password"]):
        assert password not in violation.message


def test_different_passwords_for_different_targets_are_fine():
    report = run_policies([kopia_secret("a", "one", "nfs://nas/a"), kopia_secret("b", "two", "nfs://nas/b")])
    assert report.violations == ()


# -- no-banned-storage-class-for-backups -------------------------------------------------------

def test_an_app_on_ceph_filesystem_is_stopped():
    config = with_changes(apps=[{"name": "radarr", "namespace": "media", "storageClass": "ceph-filesystem"}])
    report = run_policies(run_config(config).registrations)
    messages = [v.message for v in report.mandatory if v.policy == "no-banned-storage-class-for-backups"]
    assert any("PersistentVolumeClaim media/radarr is backed up but uses storage class 'ceph-filesystem'" in m for m in messages)
    assert any("ReplicationSource media/radarr-nas sets spec.kopia.storageClassName" in m for m in messages)
    assert any("ReplicationDestination media/radarr-bootstrap" in m for m in messages)


def test_a_cache_on_ceph_filesystem_is_stopped():
    config = dev_config()
    config["defaults"]["cache"]["storageClass"] = "ceph-filesystem"
    report = run_policies(run_config(config).registrations)
    assert any("spec.kopia.cacheStorageClassName" in v.message for v in report.mandatory)


def test_a_volume_nothing_backs_up_may_use_ceph_filesystem(dev_run):
    shared = registration(PVC, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "media-scratch", "namespace": "media"},
        "spec": {"storageClassName": "ceph-filesystem", "accessModes": ["ReadWriteMany"]},
    })
    assert run_policies(dev_run.registrations + [shared]).violations == ()


def test_a_hand_written_claim_that_a_source_backs_up_is_caught(dev_run):
    # Not labelled by the program, but a ReplicationSource names it as sourcePVC.
    claims = [r for r in dev_run.registrations if r.type == PVC and r.inputs["metadata"]["name"] != "radarr"]
    handmade = registration(PVC, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "radarr", "namespace": "media"},
        "spec": {"storageClassName": "ceph-filesystem"},
    })
    others = [r for r in dev_run.registrations if r.type != PVC]
    report = run_policies(others + claims + [handmade])
    assert [v.policy for v in report.mandatory] == ["no-banned-storage-class-for-backups"]


def test_the_banned_list_is_pack_config():
    config = with_changes(apps=[{"name": "radarr", "namespace": "media", "storageClass": "nfs-client"}])
    registrations = run_config(config).registrations
    assert run_policies(registrations).violations == ()
    report = run_policies(registrations, {"no-banned-storage-class-for-backups": {"bannedStorageClasses": ["nfs-client"]}})
    assert report.mandatory


def test_a_rule_can_be_made_advisory_or_disabled_by_pack_config():
    registrations = run_config(with_changes(apps=[{"name": "radarr", "namespace": "media", "storageClass": "ceph-filesystem"}])).registrations
    advisory = run_policies(registrations, {"no-banned-storage-class-for-backups": "advisory"})
    assert advisory.mandatory == () and advisory.violations
    disabled = run_policies(registrations, {"no-banned-storage-class-for-backups": "disabled"})
    assert disabled.violations == () and disabled.rules_run == 2


# -- replication-source-explicit ---------------------------------------------------------------

def _source_with(dev_run, change):
    source = named(dev_run, "ReplicationSource", "media", "radarr-nas")
    manifest = copy.deepcopy(source.inputs)
    change(manifest["spec"])
    return registration(source.type, manifest)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda s: s["kopia"].pop("copyMethod"), "has no spec.kopia.copyMethod"),
        (lambda s: s["trigger"].update(schedule="every hour"), "has schedule 'every hour'"),
        (lambda s: s["kopia"].update(retain={"hourly": 24, "daily": 7}), "retain.{latest, weekly, monthly, yearly} unset"),
    ],
)
def test_a_replication_source_must_be_explicit(dev_run, change, expected):
    report = run_policies([_source_with(dev_run, change)])
    (violation,) = report.mandatory
    assert violation.policy == "replication-source-explicit" and expected in violation.message
