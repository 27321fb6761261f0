"""The pack's rules on Kopiur's objects (`backups:mover: kopiur`): the same guardrails as on
the fork's, run in-process on what the program registered plus hand-written objects."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tools.offline import PROJECT_DIR, load_stack_file
from tools.policy import backup_policies, run_policies

from .conftest import dev_config, named, program_run, registration, run_config
from .test_kopiur import CARRIED, on_kopiur

KOPIUR = "kubernetes:kopiur.home-operations.com/v1alpha1"
#: dev's repository `nas` as `tools.offline` normalises it, and as the program's Secrets annotate it.
NAS = {"server": "nas.home", "path": "/mnt/ssdtank/kopia"}


def kopiur_config(**changes: Any) -> dict[str, Any]:
    return {**dev_config(), "mover": "kopiur", **changes}


@pytest.fixture(scope="module")
def kopiur_run():
    return run_config(kopiur_config())


def cluster_repository(name: str, password_secret: dict[str, str], backend: dict[str, Any]) -> object:
    return registration(f"{KOPIUR}:ClusterRepository", {
        "apiVersion": "kopiur.home-operations.com/v1alpha1", "kind": "ClusterRepository",
        "metadata": {"name": name},
        "spec": {"backend": backend, "encryption": {"passwordSecretRef": password_secret}},
    })


def password_secret(namespace: str, name: str, password: str) -> object:
    return registration("kubernetes:core/v1:Secret", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
        "stringData": {"KOPIA_PASSWORD": password},
    }, secret_fields=("stringData",))


def test_the_kopiur_render_passes_every_rule(kopiur_run):
    report = run_policies(kopiur_run.as_engine_sees_it())
    assert report.rules_run == len(backup_policies.POLICIES)
    assert report.violations == ()


@pytest.mark.parametrize("stack", CARRIED)
def test_every_shipped_stack_on_kopiur_passes_the_pack(stack: str):
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / stack)
    assert run_policies(program_run(on_kopiur(config), secret_keys).as_engine_sees_it()).violations == ()


def test_a_second_kopiur_repository_on_the_same_place_with_its_own_password_is_stopped(kopiur_run):
    """Seed 000's mistake by the other road: a hand-written ClusterRepository on the NAS the
    program's Secrets point at, with a password of its own."""
    extra = [password_secret("kopiur-system", "nas-password", "a-password-of-its-own"),
             cluster_repository("nas-by-hand", {"name": "nas-password", "namespace": "kopiur-system", "key": "KOPIA_PASSWORD"},
                                {"filesystem": {"path": "/repo", "volume": {"nfs": {"server": "NAS.home", "path": NAS["path"] + "/"}}}})]
    report = run_policies(kopiur_run.as_engine_sees_it() + extra)
    (violation,) = report.mandatory
    assert violation.policy == "kopia-shared-password"
    assert "2 different KOPIA_PASSWORDs" in violation.message and "ClusterRepository nas-by-hand" in violation.message
    # The program's own ClusterRepository reads the program's Secret: it is with the Secrets.
    groups = violation.message.split("(objects grouped by password: ")[1].split("; ")
    program = next(group for group in groups if "volsync-kopia-nas" in group)
    assert "ClusterRepository nas," in program and "nas-by-hand" not in program
    for password in ("a-password-of-its-own", dev_config()["password"]):
        assert password not in violation.message


def test_a_kopiur_repository_reading_the_same_secret_is_one_password(kopiur_run):
    same = cluster_repository("nas-again", {"name": "volsync-kopia-nas", "namespace": "volsync-system"},
                              {"filesystem": {"path": "/repo", "volume": {"nfs": NAS}}})
    assert run_policies(kopiur_run.as_engine_sees_it() + [same]).violations == ()


def _with(run, kind: str, name: str, change) -> list:
    registrations = run.as_engine_sees_it()
    target = named(run, kind, "media", name)
    inputs = copy.deepcopy(target.inputs)
    change(inputs["spec"])
    return [r for r in registrations if r.urn != target.urn] + [registration(target.type, inputs)]


@pytest.mark.parametrize(("kind", "change", "expected"), [
    ("SnapshotPolicy", lambda spec: spec["retention"].pop("keepMonthly"), "leaves spec.retention.{keepMonthly} unset"),
    ("SnapshotPolicy", lambda spec: spec.pop("copyMethod"), "has no spec.copyMethod"),
    ("SnapshotSchedule", lambda spec: spec["schedule"].update(cron="every night"), "needs a valid 5-field cron"),
    ("SnapshotSchedule", lambda spec: spec["schedule"].update(cron="H 3 * * * *"), "needs a valid 5-field cron"),
])
def test_a_kopiur_policy_and_schedule_must_be_explicit(kopiur_run, kind, change, expected):
    report = run_policies(_with(kopiur_run, kind, "radarr-nas", change))
    (violation,) = report.mandatory
    assert violation.policy == "kopiur-snapshot-policy-explicit" and expected in violation.message
    assert "media/radarr-nas" in violation.message


@pytest.mark.parametrize("cron", ["H 3 * * *", "H(0-29) H(1-4) * * *", "H/15 * * * *", "0 3 H * *", "0 3 * H *",
                                  "0 3 * * THU", "0 3 * * MON-THU"])
def test_kopiurs_hashed_crons_run(kopiur_run, cron):
    report = run_policies(_with(kopiur_run, "SnapshotSchedule", "radarr-nas", lambda spec: spec["schedule"].update(cron=cron)))
    assert report.violations == ()


BANNED_BY_PACK = {"no-banned-storage-class-for-backups": {"bannedStorageClasses": ["nfs-client"]}}


def test_an_app_on_a_banned_class_is_one_violation_naming_its_kopiur_objects():
    apps = [{"name": "radarr", "namespace": "media", "storageClass": "nfs-client"}, {"name": "sonarr", "namespace": "media"}]
    config = kopiur_config(apps=apps)
    report = run_policies(run_config(config).as_engine_sees_it(), BANNED_BY_PACK)
    (violation,) = report.mandatory
    assert violation.message.startswith("media/radarr is backed up on storage class 'nfs-client'")
    assert "PersistentVolumeClaim media/radarr" in violation.message
    assert "SnapshotPolicy media/radarr-nas (spec.verification.deep.storageClassName)" in violation.message
    assert "sonarr" not in violation.message


def test_a_cache_on_a_banned_class_is_one_violation_for_every_kopiur_mover():
    config = kopiur_config()
    config["defaults"]["cache"]["storageClass"] = "nfs-client"
    run = run_config(config)
    (violation,) = run_policies(run.as_engine_sees_it(), BANNED_BY_PACK).mandatory
    assert violation.message.startswith("the mover cache volumes use storage class 'nfs-client'")
    movers = [r for r in run.registrations if r.type in (f"{KOPIUR}:SnapshotPolicy", f"{KOPIUR}:Restore")]
    assert len(movers) == 8 and f"{len(movers)} objects" in violation.message  # 4 apps: a policy and a Restore each
    assert "Restore media/radarr-bootstrap (spec.mover.cache.storageClassName)" in violation.message


def test_a_hand_written_claim_a_kopiur_policy_backs_up_is_caught(kopiur_run):
    claim = registration("kubernetes:core/v1:PersistentVolumeClaim", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "config", "namespace": "games"},
        "spec": {"storageClassName": "ceph-filesystem", "accessModes": ["ReadWriteOnce"]}})
    policy = registration(f"{KOPIUR}:SnapshotPolicy", {
        "apiVersion": "kopiur.home-operations.com/v1alpha1", "kind": "SnapshotPolicy",
        "metadata": {"name": "config", "namespace": "games"},
        "spec": {"copyMethod": "Snapshot", "sources": [{"pvc": {"name": "config"}}],
                 "retention": {k: 1 for k in ("keepLatest", "keepHourly", "keepDaily", "keepWeekly", "keepMonthly",
                                              "keepAnnual")}}})
    assert run_policies(kopiur_run.as_engine_sees_it() + [claim]).violations == ()  # nothing backs it up
    (violation,) = run_policies(kopiur_run.as_engine_sees_it() + [claim, policy]).mandatory
    assert "games/config is backed up on storage class 'ceph-filesystem'" in violation.message


def test_plain_http_towards_a_public_endpoint_is_advised_against_on_the_cluster_repository_too():
    repository = {"name": "garage", "backend": "garage", "s3": {"endpoint": "http://s3.example.com:3900", "bucket": "volsync-backups"},
                  "credentials": {"accessKeyId": "id", "secretAccessKey": "key"}}
    run = run_config(kopiur_config(repositories=[repository]), secret_keys=["backups:password"])
    report = run_policies(run.as_engine_sees_it())
    assert report.mandatory == ()
    (violation,) = report.violations
    assert violation.policy == "s3-tls-off-only-on-private-networks"
    assert "ClusterRepository garage" in violation.message and "'s3.example.com:3900'" in violation.message


@pytest.mark.parametrize(("prefix", "stopped"), [("radarr", True), ("clusters/prod", True), ("clusters/prod/", False)])
def test_a_kopiur_prefix_without_a_trailing_slash_is_stopped(prefix: str, stopped: bool):
    repository = cluster_repository("garage-by-hand", {"name": "garage", "namespace": "kopiur-system"},
                                    {"s3": {"bucket": "volsync-backups", "endpoint": "192.168.1.58:3900", "prefix": prefix}})
    report = run_policies([repository])
    assert [v.policy for v in report.mandatory] == (["kopia-repository-at-bucket-root"] if stopped else [])
    if stopped:
        assert f"'{prefix}' has no trailing '/'" in report.mandatory[0].message


def test_a_maintenance_or_replication_cache_on_a_banned_class_is_caught():
    cache = {"cache": {"storageClassName": "ceph-filesystem"}}
    repository = cluster_repository("nas-by-hand", {"name": "nas", "namespace": "kopiur-system"},
                                    {"filesystem": {"path": "/repo", "volume": {"nfs": NAS}}})
    repository.inputs["spec"]["maintenance"] = {"enabled": True, "mover": cache}
    replication = registration(f"{KOPIUR}:RepositoryReplication", {
        "apiVersion": "kopiur.home-operations.com/v1alpha1", "kind": "RepositoryReplication",
        "metadata": {"name": "nas-to-b2", "namespace": "kopiur-system"}, "spec": {"mover": cache}})
    (violation,) = run_policies([registration(repository.type, repository.inputs), replication]).mandatory
    assert "spec.maintenance.mover.cache.storageClassName" in violation.message
    assert "RepositoryReplication kopiur-system/nas-to-b2 (spec.mover.cache.storageClassName)" in violation.message


def test_a_replications_copy_is_judged_as_a_repository_is():
    """TLS towards a public endpoint (advisory) and a prefix without '/' (mandatory) on the copy."""
    replication = registration(f"{KOPIUR}:RepositoryReplication", {
        "apiVersion": "kopiur.home-operations.com/v1alpha1", "kind": "RepositoryReplication",
        "metadata": {"name": "nas-to-b2", "namespace": "kopiur-system"},
        "spec": {"sourceRef": {"kind": "ClusterRepository", "name": "nas"},
                 "destination": {"s3": {"bucket": "copy", "endpoint": "s3.example.com", "prefix": "nas",
                                        "tls": {"disableTls": True}}}}})
    report = run_policies([replication])
    assert {v.policy for v in report.mandatory} == {"kopia-repository-at-bucket-root"}
    assert {v.policy for v in report.violations} == {"kopia-repository-at-bucket-root", "s3-tls-off-only-on-private-networks"}
    assert all("RepositoryReplication kopiur-system/nas-to-b2" in v.message for v in report.violations)
