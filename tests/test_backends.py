"""Every backend and option, on the three seed topologies in examples/ (run under mocks)."""

from __future__ import annotations

import pytest

from tools.offline import Secret, load_stack_file
from tools.policy import run_policies
from tools.preview import kubernetes_object

from . import conformance
from .conftest import PROJECT_DIR, named, of_kind, program_run, run_config, with_changes

EXAMPLES = sorted((PROJECT_DIR / "examples").glob("Pulumi.*.yaml"))


def run_example(name: str):
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / f"Pulumi.{name}.yaml")
    return program_run(config, secret_keys)


@pytest.fixture(scope="module")
def garage():
    return run_example("garage")


@pytest.fixture(scope="module")
def cephfs():
    return run_example("cephfs")


@pytest.fixture(scope="module")
def nfs_b2_r2():
    return run_example("nfs-b2-r2")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_each_seed_topology_renders_conformant_objects_and_passes_the_pack(path, crds_dir):
    config, secret_keys, _ = load_stack_file(path)
    run = program_run(config, secret_keys)
    manifests = [m for m in map(kubernetes_object, run.registrations) if m]
    assert [p for m in manifests for p in conformance.problems(m, crds_dir, "1.35")] == []
    assert run_policies(run.as_engine_sees_it()).violations == ()


# -- S3: Garage ---------------------------------------------------------------------------

def test_garage_secret_points_every_app_at_the_bucket_root(garage):
    secrets = of_kind(garage, "Secret")
    assert sorted(s.inputs["metadata"]["namespace"] for s in secrets) == ["default", "media", "volsync-system"]
    values = secrets[0].inputs["stringData"]
    assert isinstance(values, Secret)
    env = values.value
    assert env["KOPIA_REPOSITORY"] == "s3://volsync-backups/"
    assert env["KOPIA_S3_ENDPOINT"] == "192.168.1.58:3900"  # scheme stripped
    assert env["KOPIA_S3_DISABLE_TLS"] == "true"  # http:// endpoint
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "garage"
    assert env["AWS_ACCESS_KEY_ID"] == "GKexample0000000000000000"
    assert env["AWS_SECRET_ACCESS_KEY"].startswith("offline-placeholder-for-backups:repositories")
    assert set(env) == {"KOPIA_PASSWORD", "KOPIA_REPOSITORY", "KOPIA_S3_ENDPOINT", "KOPIA_S3_DISABLE_TLS",
                        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION"}


def test_the_bucket_is_protected_retained_and_made_through_an_s3_compatible_provider(garage):
    (bucket,) = [r for r in garage.registrations if r.type == "aws:s3/bucket:Bucket"]
    assert bucket.inputs["bucket"] == "volsync-backups"
    assert bucket.protect and bucket.retain_on_delete
    (provider,) = [r for r in garage.registrations if r.type == "pulumi:providers:aws"]
    p = provider.inputs
    assert p["region"] == "garage" and p["s3UsePathStyle"] == "true"
    assert '"s3": "http://192.168.1.58:3900"' in p["endpoints"]
    for check in ("skipCredentialsValidation", "skipMetadataApiCheck", "skipRegionValidation", "skipRequestingAccountId"):
        assert p[check] == "true", check
    assert isinstance(p["secretKey"], Secret) and isinstance(p["accessKey"], Secret)


def test_manage_bucket_false_leaves_an_existing_bucket_alone(garage):
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.garage.yaml")
    import json
    repos = json.loads(config["backups:repositories"])
    repos[0]["manageBucket"] = False
    config["backups:repositories"] = json.dumps(repos)
    run = program_run(config, secret_keys)
    assert not [r for r in run.registrations if r.type.startswith(("aws:", "pulumi:providers:aws"))]
    assert of_kind(run, "Secret")


# -- S3: B2 and R2 from an external secret manager, several destinations -------------------

def test_b2_and_r2_regions_and_external_secrets(nfs_b2_r2):
    b2 = named(nfs_b2_r2, "ExternalSecret", "media", "volsync-kopia-b2").inputs["spec"]
    r2 = named(nfs_b2_r2, "ExternalSecret", "media", "volsync-kopia-r2").inputs["spec"]
    assert b2["target"]["template"]["data"]["AWS_REGION"] == "us-east-005"  # from the endpoint
    assert r2["target"]["template"]["data"]["AWS_DEFAULT_REGION"] == "auto"
    assert "KOPIA_S3_DISABLE_TLS" not in b2["target"]["template"]["data"]
    assert b2["secretStoreRef"] == {"name": "onepassword", "kind": "ClusterSecretStore"}
    keys = {(d["secretKey"], d["remoteRef"]["key"]) for d in b2["data"]}
    assert keys == {("KOPIA_PASSWORD", "kopia"), ("AWS_ACCESS_KEY_ID", "backblaze"), ("AWS_SECRET_ACCESS_KEY", "backblaze")}
    assert b2["target"] == {**b2["target"], "name": "volsync-kopia-b2", "creationPolicy": "Owner"}
    assert not of_kind(nfs_b2_r2, "Secret"), "no secret value passes through Pulumi"


def test_each_app_backs_up_to_each_repository_with_its_schedule_and_retention(nfs_b2_r2):
    sources = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in of_kind(nfs_b2_r2, "ReplicationSource")}
    assert {n for n in sources if n.startswith("radarr")} == {"radarr-nfs", "radarr-b2", "radarr-r2"}
    assert {n for n in sources if n.startswith("plex")} == {"plex-nfs"}  # repositories: [nfs]
    hourly = sources["radarr-nfs"]["trigger"]["schedule"].split()
    daily = sources["radarr-b2"]["trigger"]["schedule"].split()
    assert hourly[1:] == ["*"] * 4 and 1 <= int(daily[1]) < 5 and daily[2:] == ["*"] * 3
    assert sources["radarr-b2"]["kopia"]["retain"]["daily"] == 14 and sources["radarr-b2"]["kopia"]["retain"]["hourly"] == 0
    assert "moverVolumes" not in sources["radarr-b2"]["kopia"]
    assert sources["radarr-nfs"]["kopia"]["moverVolumes"][0]["volumeSource"]["nfs"]["server"] == "citadel.internal"


def test_bootstrap_reads_from_the_primary_repository(nfs_b2_r2):
    rd = named(nfs_b2_r2, "ReplicationDestination", "media", "radarr-bootstrap").inputs["spec"]["kopia"]
    assert rd["repository"] == "volsync-kopia-nfs"
    assert (rd["username"], rd["hostname"]) == ("radarr", "media")


def test_without_a_primary_the_first_repository_of_the_app_is_used():
    repos = [
        {"name": "nas", "backend": "nfs", "nfs": {"server": "nas", "path": "/a"}},
        {"name": "nas2", "backend": "nfs", "nfs": {"server": "nas", "path": "/b"}},
    ]
    run = run_config(with_changes(repositories=repos, apps=[{"name": "radarr", "namespace": "media", "repositories": ["nas2"]}]))
    rd = named(run, "ReplicationDestination", "media", "radarr-bootstrap").inputs["spec"]["kopia"]
    assert rd["repository"] == "volsync-kopia-nas2"


def test_every_repository_gets_its_own_maintenance(nfs_b2_r2):
    maintenance = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in of_kind(nfs_b2_r2, "KopiaMaintenance")}
    assert set(maintenance) == {"kopia-nfs", "kopia-b2", "kopia-r2"}  # not the mirror copy
    assert maintenance["kopia-b2"]["repository"] == {"repository": "volsync-kopia-b2"}
    assert "moverVolumes" in maintenance["kopia-nfs"] and "moverVolumes" not in maintenance["kopia-b2"]


# -- CephFS ---------------------------------------------------------------------------------

def test_cephfs_static_volume_per_namespace_on_one_volume_handle(cephfs):
    volumes = [r for r in cephfs.registrations if r.type == "kubernetes:core/v1:PersistentVolume"]
    assert sorted(v.inputs["metadata"]["name"] for v in volumes) == [
        "kopia-cephfs-default", "kopia-cephfs-observability", "kopia-cephfs-volsync-system"]
    handles = {v.inputs["spec"]["csi"]["volumeHandle"] for v in volumes}
    assert handles == {"0001-0024-407036f5-0000-0000-0000-84e672d78c4e"}
    for volume in volumes:
        spec = volume.inputs["spec"]
        assert spec["csi"]["driver"] == "rook-ceph.cephfs.csi.ceph.com"
        assert spec["csi"]["volumeAttributes"]["rootPath"] == "/volumes/kopia/repository"
        assert spec["persistentVolumeReclaimPolicy"] == "Retain" and volume.retain_on_delete
    claim = named(cephfs, "PersistentVolumeClaim", "observability", "kopia-cephfs")
    assert claim.inputs["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim.inputs["spec"]["volumeName"] == "kopia-cephfs-observability" and claim.retain_on_delete
    source = named(cephfs, "ReplicationSource", "observability", "grafana-cephfs").inputs["spec"]["kopia"]
    assert source["moverVolumes"] == [
        {"mountPath": "repository", "volumeSource": {"persistentVolumeClaim": {"claimName": "kopia-cephfs"}}}]


def test_the_cephfs_repository_volume_is_not_a_banned_app_volume(cephfs):
    # The repository's own CephFS volume is fine; only backed-up app volumes are guarded.
    assert run_policies(cephfs.as_engine_sees_it()).violations == ()


# -- restores as config -------------------------------------------------------------------

def restore_of(restore: dict):
    run = run_config(with_changes(apps=[{"name": "radarr", "namespace": "media", "restore": restore}]))
    return named(run, "ReplicationDestination", "media", "radarr-restore").inputs["spec"]


def test_restore_previous_snapshot_into_the_app_volume():
    spec = restore_of({"previous": 2})
    kopia = spec["kopia"]
    assert kopia["previous"] == 2 and kopia["destinationPVC"] == "radarr" and kopia["copyMethod"] == "Direct"
    assert (kopia["username"], kopia["hostname"]) == ("radarr", "media") and "sourceIdentity" not in kopia
    assert spec["trigger"]["manual"].startswith("restore-")


def test_restore_as_of_and_cross_namespace():
    spec = restore_of({"restoreAsOf": "2026-01-14T12:00:00Z", "from": {"namespace": "old-media", "app": "radarr"}})
    assert spec["kopia"]["restoreAsOf"] == "2026-01-14T12:00:00Z"
    assert (spec["kopia"]["username"], spec["kopia"]["hostname"]) == ("radarr", "old-media")


def test_a_new_restore_request_gets_a_new_trigger_and_the_same_one_keeps_it():
    first, again, other = restore_of({"previous": 1}), restore_of({"previous": 1}), restore_of({"previous": 2})
    assert first["trigger"] == again["trigger"] != other["trigger"]


# -- optional: web UI and mirror --------------------------------------------------------------

def test_web_ui_is_a_read_only_kopia_server_on_the_repository(cephfs):
    (deployment,) = [r for r in cephfs.registrations if r.type == "kubernetes:apps/v1:Deployment"]
    pod = deployment.inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    script = container["command"][-1]
    assert "kopia repository connect filesystem --path=/mnt/repository --readonly" in script
    assert "kopia server start" in script
    assert container["envFrom"] == [{"secretRef": {"name": "volsync-kopia-cephfs"}}]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (repo_volume,) = [v for v in pod["volumes"] if v["name"] == "repository"]
    assert repo_volume["persistentVolumeClaim"] == {"claimName": "kopia-cephfs", "readOnly": True}
    assert [r for r in cephfs.registrations if r.type == "kubernetes:core/v1:Service"]


def test_ui_and_mirror_are_off_by_default(garage):
    kinds = {r.type for r in garage.registrations}
    assert "kubernetes:apps/v1:Deployment" not in kinds
    cronjobs = [r.inputs["metadata"]["name"] for r in garage.registrations if r.type == "kubernetes:batch/v1:CronJob"]
    assert cronjobs == ["kopia-check-garage"]  # the snapshot check is always there; no mirror


def test_mirror_syncs_the_filesystem_repository_to_s3_suspended(nfs_b2_r2):
    (cronjob,) = [r for r in nfs_b2_r2.registrations
                  if r.type == "kubernetes:batch/v1:CronJob" and r.inputs["metadata"]["name"].startswith("kopia-mirror-")]
    spec = cronjob.inputs["spec"]
    assert spec["suspend"] is True and spec["schedule"] == "0 2 * * *" and spec["concurrencyPolicy"] == "Forbid"
    container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    script = container["command"][-1]
    assert "kopia repository connect filesystem --path=/mnt/repository --readonly" in script
    assert "kopia repository sync-to s3 --bucket=kopia-mirror --endpoint=s3.us-east-005.backblazeb2.com --region=us-east-005 --delete" in script
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert refs == {"AWS_ACCESS_KEY_ID": "volsync-kopia-b2-mirror", "AWS_SECRET_ACCESS_KEY": "volsync-kopia-b2-mirror"}


def test_apps_do_not_back_up_to_a_mirror(nfs_b2_r2):
    names = {r.inputs["metadata"]["name"] for r in of_kind(nfs_b2_r2, "ReplicationSource")}
    assert not any(n.endswith("-b2-mirror") for n in names)


def test_the_web_ui_has_a_login_from_a_secret_and_never_starts_without_one():
    from components.config import ConfigError

    from .conftest import dev_config, run_config, with_changes

    nas = dev_config()["repositories"][0]
    with pytest.raises(ConfigError) as caught:
        run_config(with_changes(repositories=[{**nas, "ui": {"enabled": True}}]))
    assert any(p.startswith("backups:repositories[0].ui: ") and "needs a login" in p for p in caught.value.problems)
    run = run_config(with_changes(repositories=[{**nas, "ui": {"enabled": True, "password": "ui-only-password"}}]), preview=False)
    (deployment,) = [r for r in run.registrations if r.type == "kubernetes:apps/v1:Deployment"]
    container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]
    assert "--without-password" not in container["command"][-1] and "kopia server start" in container["command"][-1]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs["KOPIA_SERVER_PASSWORD"] == {"name": "kopia-ui-nas", "key": "KOPIA_SERVER_PASSWORD"}
    (login,) = [r for r in run.registrations if r.type == "kubernetes:core/v1:Secret" and r.inputs["metadata"]["name"] == "kopia-ui-nas"]
    assert isinstance(login.inputs["stringData"], Secret)  # a Pulumi secret on the wire
    assert login.inputs["stringData"].value == {"KOPIA_SERVER_USERNAME": "kopia", "KOPIA_SERVER_PASSWORD": "ui-only-password"}
