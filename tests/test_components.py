"""What the components register for the dev stack (run under mocks, recorded, then asserted)."""

from __future__ import annotations

import pulumi
import pytest

from components.outputs import known
from tools.offline import Secret

from .conftest import dev_config, named, of_kind, run_config, with_changes


def test_one_repository_secret_per_namespace_with_apps_plus_maintenance(dev_run):
    secrets = of_kind(dev_run, "Secret")
    where = sorted(s.inputs["metadata"]["namespace"] for s in secrets)
    assert where == ["default", "media", "volsync-system"]
    for secret in secrets:
        data = secret.inputs["stringData"]
        assert isinstance(data, Secret), "repository Secret values must be Pulumi secrets"
        assert data.value["KOPIA_REPOSITORY"] == "filesystem:///mnt/repository"
        assert data.value["KOPIA_PASSWORD"] == dev_config()["password"]


def test_kopia_maintenance_mounts_the_repository_with_its_own_secret(dev_run):
    (maintenance,) = of_kind(dev_run, "KopiaMaintenance")
    spec = maintenance.inputs["spec"]
    assert maintenance.inputs["metadata"]["namespace"] == "volsync-system"
    assert spec["repository"] == {"repository": "volsync-kopia-nas"}
    assert spec["moverVolumes"] == [
        {"mountPath": "repository", "volumeSource": {"nfs": {"server": "nas.home", "path": "/mnt/ssdtank/kopia"}}}
    ]
    minute, hour, *rest = spec["trigger"]["schedule"].split()
    assert hour == "3" and rest == ["*", "*", "0"] and 0 <= int(minute) < 60


def test_app_volume_restores_itself_from_its_bootstrap_destination(dev_run):
    claim = named(dev_run, "PersistentVolumeClaim", "media", "radarr")
    spec = claim.inputs["spec"]
    assert spec["dataSourceRef"] == {"apiGroup": "volsync.backube", "kind": "ReplicationDestination", "name": "radarr-bootstrap"}
    assert spec["resources"]["requests"]["storage"] == "10Gi"
    assert spec["storageClassName"] == "ceph-block"
    assert claim.retain_on_delete, "the data-holding PVC must survive removal from config"
    # Populated claims stay Pending through the restore: pulumi-kubernetes must not wait for Bound.
    assert claim.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}

    destination = named(dev_run, "ReplicationDestination", "media", "radarr-bootstrap")
    rd = destination.inputs["spec"]
    assert rd["trigger"] == {"manual": "restore-once"}
    kopia = rd["kopia"]
    assert kopia["copyMethod"] == "Snapshot"
    assert (kopia["capacity"], kopia["accessModes"]) == ("10Gi", ["ReadWriteOnce"])
    assert kopia["storageClassName"] == "ceph-block" and kopia["volumeSnapshotClassName"] == "csi-ceph-blockpool"
    assert (kopia["username"], kopia["hostname"]) == ("radarr", "media")  # the app's history, not a source's
    assert kopia["repository"] == "volsync-kopia-nas"
    # The populator needs only the snapshot: no scratch or cache volume kept for the app's life.
    assert kopia["cleanupTempPVC"] is True and kopia["cleanupCachePVC"] is True


def test_replication_source_sets_everything_explicitly(dev_run):
    source = named(dev_run, "ReplicationSource", "default", "bookstack-nas")
    spec = source.inputs["spec"]
    assert spec["sourcePVC"] == "bookstack-config"
    kopia = spec["kopia"]
    assert kopia["retain"] == {"latest": 0, "hourly": 24, "daily": 7, "weekly": 0, "monthly": 0, "yearly": 0}
    assert kopia["copyMethod"] == "Snapshot" and kopia["compression"] == "zstd-fastest"
    assert kopia["repository"] == "volsync-kopia-nas"
    # A filesystem repository: the repository's uid (defaults.mover, as its maintenance), the
    # app's gid and fsGroup (here the defaults) to read the data.
    assert kopia["moverSecurityContext"] == {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000, "runAsNonRoot": True}
    sabnzbd = named(dev_run, "ReplicationSource", "media", "sabnzbd-nas").inputs["spec"]["kopia"]
    assert sabnzbd["moverSecurityContext"] == {"runAsUser": 1000, "runAsGroup": 568, "fsGroup": 568, "runAsNonRoot": True}
    assert (kopia["cacheCapacity"], kopia["cacheStorageClassName"]) == ("2Gi", "openebs-hostpath")
    assert kopia["moverVolumes"][0]["volumeSource"]["nfs"]["server"] == "nas.home"
    minute, *rest = spec["trigger"]["schedule"].split()
    assert rest == ["*", "*", "*", "*"] and 0 <= int(minute) < 60


def test_movers_of_an_s3_repository_keep_the_apps_own_uid():
    from .conftest import run_config, with_changes

    b2 = {"name": "b2", "backend": "b2", "s3": {"endpoint": "s3.us-east-005.backblazeb2.com", "bucket": "volsync"},
          "credentials": {"accessKeyId": "id-0123", "secretAccessKey": "key-0123"}}
    run = run_config(with_changes(repositories=[b2], schedulePins={},
                                  apps=[{"name": "bookstack", "namespace": "default", "runAsUser": 1001}]))
    kopia = named(run, "ReplicationSource", "default", "bookstack-b2").inputs["spec"]["kopia"]
    assert kopia["moverSecurityContext"]["runAsUser"] == 1001


def test_every_resource_is_parented_to_a_component(dev_run):
    by_urn = {r.urn: r for r in dev_run.registrations}
    for reg in dev_run.registrations:
        if reg.type == "backups:stack:BackupStack":
            continue
        assert reg.parent in by_urn and by_urn[reg.parent].type.startswith("backups:"), reg.name
        assert not reg.custom or not reg.type.startswith("backups:")


def test_rendering_mode_uses_an_explicit_provider_for_every_kubernetes_object(dev_run):
    (provider,) = [r for r in dev_run.registrations if r.type == "pulumi:providers:kubernetes"]
    assert provider.inputs["renderYamlToDirectory"] == "rendered"


def test_inventory_maps_app_to_repository_schedule_and_identity(dev_run):
    inventory = dev_run.outputs["inventory"]
    assert set(inventory) == {"media/radarr", "media/prowlarr", "media/sabnzbd", "default/bookstack"}
    radarr = inventory["media/radarr"]
    source = named(dev_run, "ReplicationSource", "media", "radarr-nas").inputs["spec"]
    assert radarr["repositories"]["nas"] == {
        "source": "radarr-nas", "schedule": source["trigger"]["schedule"], "identity": "radarr@media",
    }
    assert (source["kopia"]["username"], source["kopia"]["hostname"]) == ("radarr", "media")
    assert radarr["bootstrapFrom"] == "nas" and radarr["claim"] == "radarr" and radarr["claimManaged"] is True


def test_the_password_never_appears_in_plain_on_the_wire(dev_run):
    password = dev_config()["password"]
    for reg in dev_run.registrations:
        assert password not in _plain_strings(reg.inputs), reg.name


def _plain_strings(value) -> set:
    if isinstance(value, Secret):
        return set()
    if isinstance(value, dict):
        return set().union(*(_plain_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_plain_strings(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) else set()


def test_apps_only_get_secrets_where_they_live():
    run = run_config(with_changes(apps=[{"name": "grafana", "namespace": "observability"}]))
    where = sorted(s.inputs["metadata"]["namespace"] for s in of_kind(run, "Secret"))
    assert where == ["observability", "volsync-system"]


def test_update_mode_registers_the_same_objects_as_preview(dev_run):
    update = run_config(dev_config(), preview=False)
    assert sorted((r.type, r.name) for r in update.registrations) == sorted((r.type, r.name) for r in dev_run.registrations)


def test_removing_an_app_leaves_other_apps_untouched(dev_run):
    config = dev_config()
    config["apps"] = [a for a in config["apps"] if a["name"] != "radarr"]
    run = run_config(config)
    before = {(r.type, r.name): r.inputs for r in dev_run.registrations if "radarr" not in r.name}
    after = {(r.type, r.name): r.inputs for r in run.registrations}
    assert before.keys() == after.keys()
    for key in before:
        if key[0].endswith("ReplicationSource"):
            assert before[key]["spec"]["trigger"] == after[key]["spec"]["trigger"]


def test_known_refuses_a_value_that_holds_an_output():
    """known() is for plain data; an Output inside would reach consumers unresolved."""
    with pytest.raises(TypeError, match=r"value\['db'\]\[0\] is an Output"):
        known({"db": [pulumi.Output.secret("x")]})
