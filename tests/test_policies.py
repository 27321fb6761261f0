"""The policy pack, run in-process through the SDK's analyzer on what the program registered."""

from __future__ import annotations

import copy

import pytest
from google.protobuf import json_format

from tools.policy import backup_policies, run_policies
from tools.sdk import AnalyzerServicer

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
    report = run_policies(dev_run.as_engine_sees_it())
    assert report.rules_run == len(backup_policies.POLICIES) == 6
    assert report.violations == ()


# -- kopia-shared-password ---------------------------------------------------------------------

def test_a_password_per_app_is_stopped_without_showing_either_password(dev_run):
    # Seed 000's first attempt: ${APP}-volsync-backup-password.
    extra = [kopia_secret("media", "radarr-volsync-backup-password"), kopia_secret("games", "other-password")]
    report = run_policies(dev_run.as_engine_sees_it() + extra)
    (violation,) = report.mandatory
    assert violation.policy == "kopia-shared-password"
    assert "3 different KOPIA_PASSWORDs" in violation.message and "nfs://nas.home/mnt/ssdtank/kopia" in violation.message
    for password in ("radarr-volsync-backup-password", "other-password", dev_config()["password"]):
        assert password not in violation.message


def test_different_passwords_for_different_targets_are_fine():
    report = run_policies([kopia_secret("a", "one", "nfs://nas/a"), kopia_secret("b", "two", "nfs://nas/b")])
    assert report.violations == ()


# -- no-banned-storage-class-for-backups -------------------------------------------------------

#: A class the stack's guardrails allow and an organisation's pack config bans: the pack is then
#: the one that stops it (a class the stack bans is a config error before any resource).
BANNED_BY_PACK = {"no-banned-storage-class-for-backups": {"bannedStorageClasses": ["nfs-client"]}}


def test_an_app_on_a_banned_class_is_one_violation_naming_the_app_and_its_objects():
    apps = [{"name": "radarr", "namespace": "media", "storageClass": "nfs-client"}, {"name": "sonarr", "namespace": "media"}]
    report = run_policies(run_config(with_changes(apps=apps)).as_engine_sees_it(), BANNED_BY_PACK)
    (violation,) = report.mandatory  # one setting, one line: not one per object
    assert violation.policy == "no-banned-storage-class-for-backups"
    assert violation.message.startswith("media/radarr is backed up on storage class 'nfs-client'")
    for name in ("PersistentVolumeClaim media/radarr", "ReplicationSource media/radarr-nas",
                 "ReplicationDestination media/radarr-bootstrap", "ReplicationDestination media/radarr-drill"):
        assert name in violation.message
    assert "4 objects" in violation.message and "sonarr" not in violation.message


def test_a_cache_on_a_banned_class_is_one_violation_for_every_mover():
    config = dev_config()
    config["defaults"]["cache"]["storageClass"] = "nfs-client"
    report = run_policies(run_config(config).as_engine_sees_it(), BANNED_BY_PACK)
    (violation,) = report.mandatory
    assert violation.message.startswith("the mover cache volumes use storage class 'nfs-client'")
    assert "backups:defaults.cache.storageClass" in violation.message and "12 objects" in violation.message


def test_a_volume_nothing_backs_up_may_use_ceph_filesystem(dev_run):
    shared = registration(PVC, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "media-scratch", "namespace": "media"},
        "spec": {"storageClassName": "ceph-filesystem", "accessModes": ["ReadWriteMany"]},
    })
    assert run_policies(dev_run.as_engine_sees_it() + [shared]).mandatory == ()


def test_a_hand_written_claim_that_a_source_backs_up_is_caught(dev_run):
    # Not labelled by the program, but a ReplicationSource names it as sourcePVC.
    claims = [r for r in dev_run.registrations if r.type == PVC and r.inputs["metadata"]["name"] != "radarr"]
    handmade = registration(PVC, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "radarr", "namespace": "media"},
        "spec": {"storageClassName": "ceph-filesystem"},
    })
    others = [r for r in dev_run.as_engine_sees_it() if r.type != PVC]
    report = run_policies(others + claims + [handmade])
    assert [v.policy for v in report.mandatory] == ["no-banned-storage-class-for-backups"]


def test_the_banned_list_is_pack_config():
    config = with_changes(apps=[{"name": "radarr", "namespace": "media", "storageClass": "nfs-client"}])
    registrations = run_config(config).as_engine_sees_it()
    assert run_policies(registrations).mandatory == ()
    report = run_policies(registrations, {"no-banned-storage-class-for-backups": {"bannedStorageClasses": ["nfs-client"]}})
    assert report.mandatory


def test_a_rule_can_be_made_advisory_or_disabled_by_pack_config():
    # The stack's own guardrails turned off: the pack (ceph-filesystem banned by default) still stops it.
    apps = [{"name": "radarr", "namespace": "media", "storageClass": "ceph-filesystem"}]
    registrations = run_config(with_changes(apps=apps, guardrails={"bannedStorageClasses": []})).as_engine_sees_it()
    assert run_policies(registrations).mandatory
    advisory = run_policies(registrations, {"no-banned-storage-class-for-backups": "advisory"})
    assert advisory.mandatory == () and advisory.violations
    disabled = run_policies(registrations, {"no-banned-storage-class-for-backups": "disabled"})
    assert not [v for v in disabled.violations if v.policy == "no-banned-storage-class-for-backups"]
    assert disabled.rules_run == len(backup_policies.POLICIES) - 1


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


def test_only_backup_nows_labelled_source_may_run_on_a_manual_trigger_alone(dev_run):
    """A manual trigger on the scheduled source replaces its schedule: refused. The program's
    backupNow source (labelled one-off) is the one exception; the label alone is not enough."""
    def manual(spec):
        spec["trigger"] = {"manual": "2026-11-24"}
    refused = _source_with(dev_run, manual)
    assert [v.policy for v in run_policies([refused]).mandatory] == ["replication-source-explicit"]
    labelled = copy.deepcopy(refused.inputs)
    labelled["metadata"]["labels"]["backups.homelab.dev/one-off"] = "backupNow"
    assert not run_policies([registration(refused.type, labelled)]).mandatory
    labelled["spec"]["trigger"] = {}
    assert [v.policy for v in run_policies([registration(refused.type, labelled)]).mandatory] == ["replication-source-explicit"]


# -- kopia-repository-at-bucket-root -----------------------------------------------------------

def s3_secret(url: str, **extra: str):
    return registration(SECRET, {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "prowlarr-volsync-secret", "namespace": "media"},
        "stringData": {"KOPIA_PASSWORD": "shared", "KOPIA_REPOSITORY": url,
                       "KOPIA_S3_ENDPOINT": "192.168.1.58:3900", **extra},
    }, secret_fields=("stringData",))


@pytest.mark.parametrize(
    "secret, expected",
    [
        # Seed 000, attempt 2: an embedded per-app prefix.
        (s3_secret("s3://volsync-backups/prowlarr/"), "has a path below the bucket"),
        # Attempt 1 and 4: prefix and bucket variables next to the URL.
        (s3_secret("s3://volsync-backups/", KOPIA_S3_PREFIX="prowlarr/"), "KOPIA_S3_PREFIX is ignored"),
        (s3_secret("s3://volsync-backups/", KOPIA_S3_BUCKET="volsync-backups"), "KOPIA_S3_BUCKET is ignored"),
    ],
)
def test_a_per_app_prefix_is_stopped(secret, expected):
    (violation,) = run_policies([secret]).mandatory
    assert violation.policy == "kopia-repository-at-bucket-root" and expected in violation.message


def test_the_bucket_root_passes():
    assert run_policies([s3_secret("s3://volsync-backups/"), s3_secret("s3://volsync-backups")]).violations == ()


# -- shared password across ExternalSecrets ---------------------------------------------------

def external_secret(namespace: str, password_key: str):
    return registration("kubernetes:external-secrets.io/v1:ExternalSecret", {
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": "volsync-kopia-b2", "namespace": namespace},
        "spec": {
            "secretStoreRef": {"name": "onepassword", "kind": "ClusterSecretStore"},
            "target": {"name": "volsync-kopia-b2", "template": {"data": {
                "KOPIA_REPOSITORY": "s3://volsync/", "KOPIA_S3_ENDPOINT": "s3.us-east-005.backblazeb2.com"}}},
            "data": [{"secretKey": "KOPIA_PASSWORD", "remoteRef": {"key": password_key, "property": "password"}}],
        },
    })


def test_external_secrets_of_one_repository_must_read_one_password():
    report = run_policies([external_secret("media", "kopia"), external_secret("games", "kopia-games")])
    (violation,) = report.mandatory
    assert violation.policy == "kopia-shared-password" and "s3://s3.us-east-005.backblazeb2.com/volsync" in violation.message
    assert run_policies([external_secret("media", "kopia"), external_secret("games", "kopia")]).violations == ()


# -- advisories ---------------------------------------------------------------------------------

def garage_at(endpoint: str):
    repository = {"name": "garage", "backend": "garage", "s3": {"endpoint": endpoint, "bucket": "volsync-backups"},
                  "credentials": {"accessKeyId": "id", "secretAccessKey": "key"}}
    run = run_config(with_changes(repositories=[repository]), secret_keys=["backups:password"])
    return run_policies(run.as_engine_sees_it())


def test_plain_http_towards_a_public_endpoint_is_advised_against():
    report = garage_at("http://s3.example.com:3900")
    assert report.mandatory == ()
    assert {v.policy for v in report.violations} == {"s3-tls-off-only-on-private-networks"}
    assert "'s3.example.com:3900'" in report.violations[0].message


@pytest.mark.parametrize("endpoint", ["http://192.168.1.58:3900", "http://garage.home:3900", "http://garage:3900"])
def test_plain_http_on_a_private_network_is_fine(endpoint):
    assert garage_at(endpoint).violations == ()


# -- the engine's questions ---------------------------------------------------------------------

def test_the_pack_is_asked_what_the_engine_asks_it(dev_run, monkeypatch):
    """Remediate then Analyze for every resource the engine steps through (the stack and the
    components too), then AnalyzeStack once, on outputs: a stack by its exports, a component by
    what it registered, a custom resource with its provider."""
    asked: list[tuple[str, object]] = []
    for method in ("Remediate", "Analyze", "AnalyzeStack"):
        answer = getattr(AnalyzerServicer, method)

        def spy(self, request, context, _method=method, _answer=answer):
            asked.append((_method, request))
            return _answer(self, request, context)

        monkeypatch.setattr(AnalyzerServicer, method, spy)

    run_policies(dev_run.as_engine_sees_it())

    # The history lock's dynamic provider is a default provider the engine registers itself.
    urns = [r.urn for r in dev_run.as_engine_sees_it()]
    assert "urn:pulumi:dev::homelab-backups::pulumi:providers:pulumi-python::default" in urns
    assert [(method, request.urn) for method, request in asked[:-1]] == [
        (method, urn) for urn in urns for method in ("Remediate", "Analyze")
    ]
    method, stack_request = asked[-1]
    assert method == "AnalyzeStack"
    seen = {r.urn: r for r in stack_request.resources}
    assert list(seen) == urns
    assert set(json_format.MessageToDict(seen[dev_run.stack.urn].properties)) == set(dev_run.outputs) != set()
    (app,) = [r for r in dev_run.registrations if r.name == "media-radarr" and not r.custom]
    assert json_format.MessageToDict(seen[app.urn].properties)["claimName"] == "radarr"
    (provider,) = [r for r in dev_run.registrations if r.type == "pulumi:providers:kubernetes"]
    custom = [r for r in dev_run.registrations if r.custom and r.type.startswith("kubernetes:") and r.type != provider.type]
    assert custom and all(seen[r.urn].provider.urn == provider.urn for r in custom)
