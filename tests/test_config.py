"""Invalid config stops the program before any resource, naming the key path; no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from components.config import ConfigError

from .conftest import PROJECT_DIR, dev_config, named, of_kind, run_config, with_changes

APP = {"name": "radarr", "namespace": "media"}


def problems_of(config) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        run_config(config)
    return caught.value.problems


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"apps": [{**APP, "capacity": "10Gx"}]},
         "backups:apps[0].capacity: '10Gx' is not a positive Kubernetes quantity (like 5Gi)"),
        ({"apps": [{**APP, "capacity": "-5Gi"}]}, "backups:apps[0].capacity: '-5Gi' is not a positive"),
        ({"apps": [{**APP, "capacty": "5Gi"}]},
         "backups:apps[0].capacty: unknown key 'capacty'; did you mean 'capacity'?"),
        ({"apps": [{"name": "Radarr_1", "namespace": "media"}]}, "backups:apps[0].name: 'Radarr_1' is not a DNS-1123 label"),
        ({"apps": [APP, APP]}, "backups:apps[1].name: duplicate app 'media/radarr'"),
        ({"apps": [{**APP, "repositories": ["nsa"]}]},
         "backups:apps[0].repositories[0]: unknown repository 'nsa' (did you mean 'nas'?)"),
        ({"apps": [{**APP, "runAsUser": "abc"}]}, "backups:apps[0].runAsUser: 'abc' is not a whole number"),
        ({"apps": [{**APP, "repositories": "nas"}]}, "backups:apps[0].repositories: 'nas' is not a list"),
        ({"apps": [{**APP, "schedule": "61 * * * *"}]}, "backups:apps[0].schedule: '61 * * * *' is not a valid cron"),
        ({"kubernetes": {"version": "one.35"}}, "backups:kubernetes.version: 'one.35' does not match"),
        ({"apps": [{"name": "x" * 50, "namespace": "media"}]}, "longer than its limit of 51"),
    ],
)
def test_each_problem_names_its_key_path(change, expected):
    problems = problems_of(with_changes(**change))
    assert any(expected in p for p in problems), problems


def test_repository_problems_are_named():
    repo = dev_config()["repositories"][0]
    config = with_changes(repositories=[
        {**repo, "nfs": {"server": "nas", "path": "relative/path"}, "retain": {"hourly": -1}},
    ])
    problems = problems_of(config)
    assert "backups:repositories[0].nfs.path: 'relative/path' is not an absolute path (like /mnt/tank/kopia)" in problems
    assert "backups:repositories[0].retain.hourly: -1 is negative; use 0 or more" in problems


def test_cross_references_are_checked_once_every_field_is_valid():
    # Cross-key checks need valid fields to compare, so they come in a second round.
    repo = dev_config()["repositories"][0]
    problems = problems_of(with_changes(repositories=[repo, {**repo, "primary": True}]))
    assert any(p.startswith("backups:repositories[1].name: duplicate repository 'nas'") for p in problems)
    assert any(p.startswith("backups:repositories[1].primary: more than one repository is primary") for p in problems)


def test_all_problems_are_listed_at_once():
    config = with_changes(apps=[{**APP, "capacity": "10Gx", "runAsUser": "x"}], password=None)
    config.pop("password")
    problems = problems_of(config)
    assert len(problems) == 3, problems
    assert "backups:password: is required" in problems


S3 = {"name": "b2", "backend": "b2", "s3": {"endpoint": "s3.us-east-005.backblazeb2.com", "bucket": "volsync"},
      "credentials": {"accessKeyId": "id", "secretAccessKey": "key"}}


@pytest.mark.parametrize(
    "repository, expected",
    [
        ({**S3, "s3": {**S3["s3"], "bucket": "volsync/radarr/"}},
         "backups:repositories[1].s3.bucket: 'volsync/radarr/' has a path: a shared Kopia repository lives at the bucket root"),
        ({**S3, "s3": {**S3["s3"], "bucket": "Vol_Sync"}}, "'Vol_Sync' is not a valid S3 bucket name"),
        ({k: v for k, v in S3.items() if k != "credentials"}, "backups:repositories[1]: backend 'b2' needs credentials"),
        ({**S3, "credentials": {"accessKeyId": "id"}}, "backups:repositories[1].credentials: needs accessKeyId and secretAccessKey"),
        ({**S3, "s3": {**S3["s3"], "endpoint": "https://s3.example.com/bucket/path"}}, "is not host[:port]"),
        ({**S3, "backend": "garage", "nfs": {"server": "n", "path": "/p"}}, "'nfs' does not belong to backend 'garage'"),
        ({**S3, "s3": {"endpoint": "minio.home:9000", "bucket": "volsync"}}, "backend 'b2' needs s3.region"),
        ({**S3, "credentials": {"externalSecret": {"store": "onepassword", "key": "b2"}}},
         "backups:repositories[1].credentials.externalSecret: one Secret holds the credentials and the password"),
    ],
)
def test_repository_problems_name_the_key(repository, expected):
    config = with_changes(repositories=[dev_config()["repositories"][0], repository])
    problems = problems_of(config)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "restore, expected",
    [
        ({"previous": 1, "restoreAsOf": "2026-01-14T12:00:00Z"}, "give previous or restoreAsOf, not both"),
        ({"restoreAsOf": "yesterday"}, "'yesterday' is not an RFC 3339 time"),
        ({}, "needs previous: N, restoreAsOf"),
        ({"previous": 0, "repository": "b2"}, "backups:apps[0].restore.repository: media/radarr neither backs up to 'b2' nor to a repository mirrored into it"),
    ],
)
def test_restore_problems_name_the_key(restore, expected):
    problems = problems_of(with_changes(apps=[{**APP, "restore": restore}]))
    assert any(expected in p for p in problems), problems


def test_bad_config_registers_nothing_and_exits_2_without_traceback(tmp_path):
    stack = tmp_path / "Pulumi.broken.yaml"
    stack.write_text(
        "config:\n"
        "  backups:password: x\n"
        "  backups:repositories: [{name: nas, backend: nfs, nfs: {server: nas, path: /k}}]\n"
        "  backups:apps: [{name: radarr, namespace: media, capacity: 10Gx}]\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "tools.preview", "--config-file", str(stack), "--report", str(tmp_path / "r.json")],
        cwd=PROJECT_DIR, capture_output=True, text=True,
    )
    assert result.returncode == 2, result.stderr
    assert "backups:apps[0].capacity: '10Gx' is not a positive Kubernetes quantity" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "r.json").exists()


# -- advice: a config that works but should change ----------------------------------------------

NAS = dev_config()["repositories"][0]
SECOND = {**NAS, "name": "nas-too", "primary": False, "nfs": {"server": "nas2.home", "path": "/kopia"}}


def plain(warnings: list[str]) -> list[str]:
    return [w for w in warnings if "a secret in plain config" in w]


def test_a_plain_password_draws_one_warning_naming_its_key_not_its_value():
    config = with_changes(apps=[APP, {"name": "bookstack", "namespace": "default"}, {"name": "x", "namespace": "games"}])
    run = run_config(config)
    (warning,) = run.warnings  # one per key, not one per namespace's Secret
    assert warning.startswith("backups:password: a secret in plain config")
    assert "pulumi config set --secret backups:password" in warning
    assert config["password"] not in warning


def test_a_secret_or_external_password_draws_no_warning():
    assert plain(run_config(dev_config(), secret_keys=["backups:password"]).warnings) == []
    external = {"externalSecret": {"store": "onepassword", "key": "kopia"}}
    assert plain(run_config(with_changes(password=external)).warnings) == []


def test_a_repository_password_in_plain_config_is_named_by_its_path():
    config = with_changes(repositories=[NAS, {**SECOND, "password": "another"}])
    (warning,) = plain(run_config(config, secret_keys=["backups:password"]).warnings)
    assert warning.startswith("backups:repositories[1].password: ")
    assert "pulumi config set --secret --path backups:repositories[1].password" in warning
    assert plain(run_config(config, secret_keys=["backups:password", "backups:repositories"]).warnings) == []


B2 = {"name": "b2", "backend": "b2", "primary": False,
      "s3": {"endpoint": "s3.us-east-005.backblazeb2.com", "bucket": "homelab-kopia"},
      "credentials": {"accessKeyId": "key-id-0042", "secretAccessKey": "plain-s3-secret-77"}}
UI = {"enabled": True, "password": "plain-ui-login-55"}
DB = {"name": "postgres18", "namespace": "database", "repositories": ["b2"],
      "encryption": {"passphrase": "plain-cipher-pass-66"}}


def test_every_secret_bearing_key_in_plain_config_is_named_and_never_quoted():
    config = with_changes(repositories=[{**NAS, "ui": UI}, B2], databases=[DB])
    warned = plain(run_config(config, secret_keys=["backups:password"]).warnings)
    assert [w.split(": a secret")[0] for w in warned] == [
        "backups:repositories[0].ui.password",
        "backups:repositories[1].credentials.accessKeyId",
        "backups:repositories[1].credentials.secretAccessKey",
        "backups:databases[0].encryption.passphrase",
    ]
    for value in ("plain-ui-login-55", "key-id-0042", "plain-s3-secret-77", "plain-cipher-pass-66"):
        assert not any(value in w for w in warned)
    # Held as secrets by the engine (the whole key, as `pulumi config set --secret --path` marks it).
    held = ["backups:password", "backups:repositories", "backups:databases"]
    assert plain(run_config(config, secret_keys=held).warnings) == []


def test_an_app_uid_its_filesystem_movers_do_not_run_as_is_said_with_its_key():
    apps = [{**APP, "runAsUser": 568, "runAsGroup": 568, "fsGroup": 568},
            {"name": "bookstack", "namespace": "default", "runAsUser": 1000},
            {"name": "atuin", "namespace": "default", "runAsUser": 1001, "repositories": ["b2"]}]
    config = with_changes(repositories=[NAS, B2], apps=apps)
    run = run_config(config, secret_keys=["backups:password", "backups:repositories"])
    (warning,) = run.warnings
    assert warning.startswith("backups:apps[0].runAsUser: 568 is not used by its movers to nas: "
                              "they run as backups:defaults.mover.runAsUser (1000)")
    # ...which is what the rendered sources say: the NFS mover runs as 1000 with the app's group,
    # the S3 one as the app.
    source = named(run, "ReplicationSource", "media", "radarr-nas").inputs["spec"]["kopia"]["moverSecurityContext"]
    assert (source["runAsUser"], source["runAsGroup"], source["fsGroup"]) == (1000, 568, 568)
    other = named(run, "ReplicationSource", "default", "atuin-b2").inputs["spec"]["kopia"]["moverSecurityContext"]
    assert other["runAsUser"] == 1001


@pytest.mark.parametrize("version, jitter, warned", [("1.35", 30, True), ("1.34", 30, True), ("1.36", 30, False),
                                                     ("1.35", 0, False)])
def test_a_cluster_version_that_renders_a_gated_api_is_said(version, jitter, warned):
    config = with_changes(kubernetes={"version": version}, admission={"jitterSeconds": jitter})
    notes = [w for w in run_config(config).warnings if w.startswith("backups:kubernetes.version")]
    assert bool(notes) == warned
    if warned:
        assert "--feature-gates=MutatingAdmissionPolicy=true" in notes[0]


def test_one_kopia_image_runs_every_kopia_pod_and_is_configurable():
    repos = [{**NAS, "ui": UI, "mirrorTo": "b2"}, B2]
    seen = []
    for image in (None, "registry.home/kopia:0.22.3"):
        defaults = {**dev_config()["defaults"], **({"kopiaImage": image} if image else {})}
        run = run_config(with_changes(repositories=repos, defaults=defaults))
        images = {c["image"] for kind in ("Deployment", "CronJob") for r in of_kind(run, kind)
                  for c in _containers(r.inputs)}
        kinds = {r.inputs["metadata"]["name"] for kind in ("Deployment", "CronJob") for r in of_kind(run, kind)}
        assert len(kinds) >= 3  # the web UI, the snapshot check, the mirror
        assert len(images) == 1, images
        seen.append(images.pop())
    assert seen[1] == "registry.home/kopia:0.22.3" and seen[0].startswith("kopia/kopia:")
    problems = problems_of(with_changes(repositories=[{**NAS, "ui": {**UI, "image": "kopia/kopia:0.21.1"}}, B2]))
    assert problems == ["backups:repositories[0].ui: image: every Kopia pod runs backups:defaults.kopiaImage "
                        "(one Kopia version for the whole repository, matched to the mover's); remove this "
                        "key and set that one"]


def _containers(inputs: dict) -> list[dict]:
    spec = inputs["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if "jobTemplate" in spec else spec["template"]
    return template["spec"]["containers"]


# -- every problem at once ----------------------------------------------------------------------

def test_a_bad_field_and_a_problem_between_keys_elsewhere_are_reported_in_one_run():
    apps = [{**APP, "restore": {"restoreAsOf": "2026-02-30T25:00:00Z"}},
            {"name": "sonarr", "namespace": "media", "repositories": ["nsa"]}]
    assert problems_of(with_changes(apps=apps)) == [
        "backups:apps[0].restore.restoreAsOf: '2026-02-30T25:00:00Z' is not an RFC 3339 time "
        "(like 2026-01-14T12:00:00Z): no such date or time",
        "backups:apps[1].repositories[0]: unknown repository 'nsa' (did you mean 'nas'?); defined: nas",
    ]


def test_leaving_a_bad_field_out_never_invents_a_problem_between_keys():
    """apps[0]'s storageClass is malformed; left out, it falls back to the default class, which
    this stack bans: a problem the user did not write. Problems that name a failing entry wait."""
    defaults = {**dev_config()["defaults"], "storageClass": "ceph-filesystem"}
    apps = [{**APP, "storageClass": "Not A Class"}]
    (problem,) = problems_of(with_changes(defaults=defaults, apps=apps))
    assert problem.startswith("backups:apps[0].storageClass: 'Not A Class' is not")


@pytest.mark.parametrize("change", [
    # A repository's field: apps name repositories, so nothing is left out of a repository.
    {"repositories": [{**dev_config()["repositories"][0], "mirrorTo": "Bad Name"},
                      {"name": "b2", "backend": "b2", "s3": {"endpoint": "s3.us-east-005.backblazeb2.com", "bucket": "homelab-b2"},
                       "credentials": {"accessKeyId": "a", "secretAccessKey": "b"}}],
     "apps": [{**APP, "restore": {"repository": "b2", "previous": 0}, "repositories": ["nas"]}]},
    # A misspelt top-level key.
    {"bogusKey": 1, "apps": [{**APP, "repositories": ["nsa"]}]},
])
def test_a_failure_outside_the_apps_holds_the_second_pass_back(change):
    found = problems_of(with_changes(**change))
    assert len(found) == 1 and "unknown repository" not in found[0] and "neither backs up" not in found[0], found


def test_a_required_field_that_fails_leaves_the_rules_between_keys_for_the_next_run():
    apps = [{"name": "Radarr!", "namespace": "media"}, {"name": "sonarr", "namespace": "media", "repositories": ["nsa"]}]
    (problem,) = problems_of(with_changes(apps=apps))
    assert problem.startswith("backups:apps[0].name: ")
