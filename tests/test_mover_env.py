"""The controller table of tests/e2e/controller.py, a test per field.

The expectations are the fork's (v0.17.11 mover.go/builder.go, kopiamaintenance_controller.go),
written out by hand from its source, not produced by the table.
"""

from __future__ import annotations

import pytest

from tests.e2e import controller

SECRET = {"KOPIA_PASSWORD": "pw", "KOPIA_REPOSITORY": "filesystem:///mnt/repository", "UNRELATED": "x"}
NFS = {"mountPath": "repository", "volumeSource": {"nfs": {"server": "nas.home", "path": "/k"}}}


def source(**kopia):
    base = {"repository": "volsync-kopia-nas", "moverSecurityContext": {"runAsUser": 1000, "runAsGroup": 568, "fsGroup": 568}}
    return {"metadata": {"name": "radarr-nas", "namespace": "media"}, "spec": {"sourcePVC": "radarr", "kopia": {**base, **kopia}}}


def destination(**kopia):
    base = {"repository": "volsync-kopia-nas", "moverSecurityContext": {"runAsUser": 1000}}
    return {"metadata": {"name": "radarr-bootstrap", "namespace": "media"}, "spec": {"kopia": {**base, **kopia}}}


def test_a_source_mounts_its_data_at_data_and_its_cache_at_cache_and_backs_up():
    job = controller.source_job(source(), SECRET)
    assert (job.env["DATA_DIR"], job.env["KOPIA_CACHE_DIR"], job.args, job.data_path) == ("/data", "/cache", ("backup",), "/data")


def test_a_destination_restores_into_restore_data():
    job = controller.destination_job(destination(), SECRET)
    assert (job.env["DATA_DIR"], job.args) == ("/restore/data", ("restore",)) and job.env["KOPIA_DISCOVER_SNAPSHOTS"] == "true"


def test_only_the_known_secret_keys_reach_the_mover():
    env = controller.source_job(source(), SECRET).env
    assert env["KOPIA_PASSWORD"] == "pw" and env["KOPIA_REPOSITORY"] == "filesystem:///mnt/repository" and "UNRELATED" not in env


def test_s3_keys_are_copied_from_the_secret():
    s3 = {"KOPIA_PASSWORD": "pw", "KOPIA_REPOSITORY": "s3://b/", "KOPIA_S3_ENDPOINT": "h:9000", "KOPIA_S3_DISABLE_TLS": "true",
          "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "key", "AWS_REGION": "garage", "AWS_DEFAULT_REGION": "garage"}
    env = controller.source_job(source(), s3).env
    assert {k: env[k] for k in s3} == s3


def test_a_secret_without_a_password_is_refused():
    with pytest.raises(ValueError, match="KOPIA_PASSWORD"):
        controller.source_job(source(), {"KOPIA_REPOSITORY": "s3://b/"})


def test_a_pvc_in_mover_volumes_makes_a_filesystem_repository_whatever_the_secret_says():
    claim = {"mountPath": "repo", "volumeSource": {"persistentVolumeClaim": {"claimName": "kopia-nas"}}}
    env = controller.source_job(source(moverVolumes=[claim]), {**SECRET, "KOPIA_REPOSITORY": "s3://b/"}).env
    assert env["KOPIA_REPOSITORY"] == "filesystem:///mnt/repo"


def test_an_nfs_mover_volume_leaves_the_url_to_the_secret_and_is_mounted_under_mnt():
    job = controller.source_job(source(moverVolumes=[NFS]), SECRET)
    assert job.env["KOPIA_REPOSITORY"] == SECRET["KOPIA_REPOSITORY"] and job.repository_mounts == {"/mnt/repository": NFS["volumeSource"]}


@pytest.mark.parametrize("key", controller.RETAIN_KEYS)
def test_each_retain_key_becomes_its_variable(key):
    env = controller.source_job(source(retain={key: 3}), SECRET).env
    assert env[f"KOPIA_RETAIN_{key.upper()}"] == "3"


def test_compression_and_parallelism():
    env = controller.source_job(source(compression="zstd-fastest", parallelism=2), SECRET).env
    assert (env["KOPIA_COMPRESSION"], env["KOPIA_PARALLELISM"]) == ("zstd-fastest", "2")


def test_additional_args_are_joined_with_the_forks_separator():
    env = controller.source_job(source(additionalArgs=["--a", "--b"]), SECRET).env
    assert env["KOPIA_ADDITIONAL_ARGS"] == "--a|VOLSYNC_ARG_SEP|--b"


def test_a_source_identity_is_its_name_at_its_namespace():
    env = controller.source_job(source(), SECRET).env
    assert (env["KOPIA_OVERRIDE_USERNAME"], env["KOPIA_OVERRIDE_HOSTNAME"]) == ("radarr-nas", "media")


def test_a_username_is_cut_at_fifty_characters():
    body = source()
    body["metadata"]["name"] = "a" * 51
    assert controller.source_job(body, SECRET).env["KOPIA_OVERRIDE_USERNAME"] == "a" * 50


def test_explicit_username_and_hostname_win():
    env = controller.source_job(source(username="prowlarr", hostname="old"), SECRET).env
    assert (env["KOPIA_OVERRIDE_USERNAME"], env["KOPIA_OVERRIDE_HOSTNAME"]) == ("prowlarr", "old")


def test_a_destination_reads_its_source_identity():
    env = controller.destination_job(destination(sourceIdentity={"sourceName": "radarr-nas", "sourceNamespace": "old"}), SECRET).env
    assert (env["KOPIA_OVERRIDE_USERNAME"], env["KOPIA_OVERRIDE_HOSTNAME"]) == ("radarr-nas", "old")


def test_a_destination_source_identity_without_namespace_is_its_own_namespace():
    env = controller.destination_job(destination(sourceIdentity={"sourceName": "radarr-nas"}), SECRET).env
    assert env["KOPIA_OVERRIDE_HOSTNAME"] == "media"


def test_a_destination_without_source_identity_is_its_own_name():
    env = controller.destination_job(destination(), SECRET).env
    assert (env["KOPIA_OVERRIDE_USERNAME"], env["KOPIA_OVERRIDE_HOSTNAME"]) == ("radarr-bootstrap", "media")


@pytest.mark.parametrize("field, variable, value", [
    ("previous", "KOPIA_PREVIOUS", 2), ("restoreAsOf", "KOPIA_RESTORE_AS_OF", "2026-01-14T12:00:00Z"), ("shallow", "KOPIA_SHALLOW", 3),
])
def test_restore_selection_fields(field, variable, value):
    assert controller.destination_job(destination(**{field: value}), SECRET).env[variable] == str(value)


def test_file_deletion_is_passed_only_when_enabled():
    assert controller.destination_job(destination(enableFileDeletion=True), SECRET).env["KOPIA_ENABLE_FILE_DELETION"] == "true"
    assert "KOPIA_ENABLE_FILE_DELETION" not in controller.destination_job(destination(), SECRET).env


def test_the_mover_security_context_is_the_pods_and_its_groups_are_primary_fsgroup_and_supplemental():
    job = controller.source_job(source(moverSecurityContext={"runAsUser": 1000, "runAsGroup": 568, "fsGroup": 569,
                                                             "supplementalGroups": [570]}), SECRET)
    assert (job.run_as_user, job.run_as_group, job.fs_group, job.groups) == (1000, 568, 569, (568, 569, 570))


def test_maintenance_gets_the_whole_secret_its_direction_and_the_pod_security_context():
    body = {"spec": {"repository": {"repository": "volsync-kopia-nas"}, "moverVolumes": [NFS],
                     "podSecurityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000}}}
    job = controller.maintenance_job(body, SECRET)
    assert job.env["DIRECTION"] == "maintenance" and job.env["UNRELATED"] == "x" and job.args == ()
    assert (job.run_as_user, job.repository_mounts) == (1000, {"/mnt/repository": NFS["volumeSource"]})


def test_maintenance_defaults_to_uid_and_fsgroup_1000():
    job = controller.maintenance_job({"spec": {"repository": {"repository": "r"}}}, SECRET)
    assert (job.run_as_user, job.fs_group) == (1000, 1000)
