"""Every alert reads only metrics that something sets: an alert on a metric nobody sets never fires.

The list below is written from the controllers' source, not from monitoring.py: the VolSync
controller's sync metrics, the metrics the fork's controller records for movers
(`volsync_kopia_operation_*`, `volsync_kopia_snapshot_creation_*`), kube-state-metrics' Job
and CronJob metrics, CloudNative-PG's default `pg_stat_archiver` query
(config/manager/default-monitoring.yaml: `cnpg_pg_stat_archiver_<column>`) and its collector's
count of WAL files waiting (`cnpg_collector_pg_wal_archive_status`, pg_collector.go). The fork registers
`volsync_kopia_maintenance_*` but never sets them; CloudNative-PG never sets
`cnpg_collector_last_available_backup_timestamp` for plugin backups. Kopiur's, from its
controller's `crates/controller/src/metrics.rs` (gauges recomputed from its objects at every scrape):
`kopiur_policy_last_backup_success_timestamp_seconds`, `kopiur_snapshot_consecutive_failures`,
`kopiur_snapshot_verified_timestamp_seconds`, `kopiur_leader_is_leader` among others; it has no
metric for a maintenance run. And kube-state-metrics' custom-resource metrics of CloudNative-PG's
Backup objects, under the config the README gives (`kube_cnpg_backup_status_phase`,
`kube_cnpg_backup_created`: tests/e2e/test_backup_objects.py reads them from the real one).
"""

from __future__ import annotations

import re

import pytest

from .conftest import run_config, with_changes

SET = re.compile(
    r"volsync_volume_out_of_sync|volsync_sync_duration_seconds(_count|_sum)?|volsync_missed_intervals_total"
    r"|volsync_kopia_operation_(success|failure)_total|volsync_kopia_snapshot_creation_(success|failure)_total"
    r"|kube_job_[a-z_]+|kube_cronjob_[a-z_]+|kube_deployment_[a-z_]+"
    r"|cnpg_pg_stat_archiver_(archived_count|failed_count|seconds_since_last_archival|seconds_since_last_failure"
    r"|last_archived_time|last_failed_time|last_archived_wal_start_lsn|last_failed_wal_start_lsn|stats_reset_time)"
    r"|cnpg_collector_pg_wal_archive_status"
    r"|kopiur_policy_last_backup_success_timestamp_seconds|kopiur_snapshot_consecutive_failures"
    r"|kopiur_snapshot_verified_timestamp_seconds|kopiur_leader_is_leader|kopiur_snapshots_completed_total"
    r"|kube_cnpg_backup_status_phase|kube_cnpg_backup_created"
)
NEVER_SET = re.compile(r"volsync_kopia_maintenance_.*|cnpg_collector_last_available_backup_timestamp")
#: PromQL words that are not metric names.
_WORDS = {"sum", "max", "min", "by", "on", "and", "or", "unless", "increase", "rate", "time", "absent", "ignoring",
          "without", "group_left", "group_right", "count", "avg", "bool"}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers outside strings, label matchers, ranges and
    grouping clauses, that are not functions or keywords."""
    text = re.sub(r'"[^"]*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|on|ignoring|without|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set(re.findall(r"\b[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()", text)) - _WORDS
    return {n for n in names if not re.fullmatch(r"[0-9.e]+", n)}


def test_the_metric_name_reader_finds_names_and_only_names():
    expr = 'sum by (a, b) (increase(x_total{role="source", n=~"y|z"}[3h])) > on (ns) kube_job_x and time() - m > 3'
    assert metric_names(expr) == {"x_total", "kube_job_x", "m"}


@pytest.mark.parametrize("mover", ["volsync", "kopiur"])
def test_every_alert_reads_only_metrics_that_are_set(mover: str):
    # The dev stack (backups, maintenance, drills) with the web UI on: every rule is emitted.
    nas = {**with_changes()["repositories"][0], "ui": {"enabled": True, "password": "ui-password"}}
    b2 = {"name": "b2", "backend": "b2", "s3": {"endpoint": "s3.us-east-005.backblazeb2.com", "bucket": "volsync"},
          "credentials": {"accessKeyId": "id", "secretAccessKey": "key"}}
    databases = [{"name": "pg", "namespace": "database", "bucket": "pg-archive", "repositories": ["b2"]}]
    run = run_config(with_changes(repositories=[nas, b2], databases=databases, mover=mover), preview=False)
    (rule,) = [r for r in run.registrations if r.type.endswith(":PrometheusRule")]
    exprs = {r["alert"]: r["expr"] for g in rule.inputs["spec"]["groups"] for r in g["rules"]}
    shared = {"KopiaSnapshotsMissing", "KopiaWebUiDown", "PostgresWalArchivingFailing", "PostgresWalArchivingStalled",
              "PgBackRestBackupsStale", "PgBackRestBackupFailed", "BackupStaleNas", "BackupStaleB2", "RestoreDrillOverdue"}
    own = {"volsync": {"VolSyncMoverFailed", "KopiaMaintenanceMissing"},
           "kopiur": {"KopiurAbsent", "KopiurBackupFailing", "KopiaMaintenanceFailure", "KopiaMaintenanceTimeout"}}[mover]
    assert shared | own <= set(exprs)
    for alert, expr in exprs.items():
        names = metric_names(expr)
        assert names, alert
        unset = [n for n in names if not SET.fullmatch(n) or NEVER_SET.fullmatch(n)]
        assert unset == [], f"{alert} reads {unset}, which nothing sets"
