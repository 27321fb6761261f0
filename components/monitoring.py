"""BackupAlerts: a PrometheusRule for backups that are quietly stale or quietly unrestorable.

Only metrics something sets: the VolSync controller's `volsync_volume_out_of_sync`,
`volsync_sync_duration_seconds` (a summary; its `_count` grows by one per completed sync) and
`volsync_missed_intervals_total`, labelled obj_name/obj_namespace/role/method; the fork's
controller's `volsync_kopia_operation_failure_total` (mover.go recordOperationFailure, labelled
obj_name/obj_namespace/role/operation/repository/failure_reason); and kube-state-metrics'
CronJob and Job metrics for maintenance. The fork also registers `volsync_kopia_maintenance_*`
(cronjob failures, last run timestamp) but never sets them: alerts on them never fire. Its
maintenance CronJobs are `kopia-maint-<name>-<hash>` and their Jobs stop at 3 hours
(activeDeadlineSeconds 10800).

With `mover: kopiur`, Kopiur's own (crates/controller/src/metrics.rs, gauges recomputed from its
objects at every scrape): `kopiur_policy_last_backup_success_timestamp_seconds{namespace, policy}`
(the end time of the policy's newest succeeded Snapshot), `kopiur_snapshot_consecutive_failures
{namespace, name}` (failed runs since the last success), `kopiur_snapshot_verified_timestamp_seconds
{namespace, name}` (a policy's last deep verification: the drill) and `kopiur_leader_is_leader`.
Kopiur sets no metric for a maintenance run: its maintenance Jobs (kube-state-metrics) say when
one failed or hangs, not when the last one succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from . import cnpg_backups, labels, names, tree
from .outputs import known
from .plan import AlertPlan, StaleWindowPlan
from .schedule import longest_gap_of
from .volsync import Spec

API_VERSION = "monitoring.coreos.com/v1"
#: A kube-state-metrics CronJob metric of the fork's maintenance CronJobs (`kopia-maint-...`).
MAINTENANCE_CRONJOBS = '{}{{cronjob=~"kopia-maint-.*"}}'
#: The same for this program's snapshot checks (`kopia-check-<repository>`).
CHECK_CRONJOBS = '{}{{cronjob=~"' + names.snapshot_check("") + '.*"}}'
#: And for its pgBackRest backup checks (`pgbackrest-check-<database>`).
PGBACKREST_CHECK_CRONJOBS = '{}{{cronjob=~"' + names.pgbackrest_check("") + '.*"}}'


def last_run_failed(cronjobs: str) -> str:
    """PromQL: the CronJob's last scheduled run ended without success (or it never succeeded), and
    none of its Jobs is running now. `cronjobs` formats a metric name with the CronJobs' selector."""
    scheduled, succeeded = cronjobs.format("kube_cronjob_status_last_schedule_time"), cronjobs.format(
        "kube_cronjob_status_last_successful_time")
    return (f"({scheduled} > on (namespace, cronjob) {succeeded} or {scheduled} unless on (namespace, cronjob) {succeeded}) "
            f"and on (namespace, cronjob) {cronjobs.format('kube_cronjob_status_active')} == 0")


class Rule(Spec):
    alert: str
    expr: str
    for_: str = Field(alias="for")
    labels: dict[str, str]
    annotations: dict[str, str]


class RuleGroup(Spec):
    name: str
    rules: tuple[Rule, ...]


class PrometheusRuleSpec(Spec):
    groups: tuple[RuleGroup, ...]


def longest_gap(cron: str) -> timedelta:
    """The longest time between two runs of a 5-field cron over two weeks."""
    minute, hour, *rest = cron.split()
    # A single minute or hour value only shifts the runs, not the gaps between them, so the
    # spread schedules of a hundred apps reduce to a handful of shapes to walk.
    return longest_gap_of((" ".join(["0" if minute.isdigit() else minute, "0" if hour.isdigit() else hour, *rest]),))


def prometheus_duration(span: timedelta) -> str:
    """Whole hours as a Prometheus duration: 3h, 2d, 2d1h."""
    days, hours = divmod(int(span.total_seconds() // 3600), 24)
    return (f"{days}d" if days else "") + (f"{hours}h" if hours or not days else "")


def stale_after(window: StaleWindowPlan) -> timedelta:
    """Two missed runs plus an hour for a slow mover: one late run is not an incident."""
    return 2 * max(longest_gap(c) for c in window.crons) + timedelta(hours=1)


@dataclass(frozen=True)
class BackupAlertsArgs:
    plan: AlertPlan
    """The alert windows, what exists to alert on, where the rule goes (`plan.plan_stack`)."""


def _rule(alert: str, expr: str, for_: str, severity: str, summary: str, description: str, runbook: str) -> Rule:
    return Rule(
        alert=alert, expr=expr, for_=for_, labels={"severity": severity},
        # `runbook` is the first thing to do; the README's Troubleshooting section has the rest.
        annotations={"summary": summary, "description": description, "runbook": runbook},
    )


def rule_groups(plan: AlertPlan) -> tuple[RuleGroup, ...]:
    """Every group: the movers', maintenance's, the drills' (if any app is drilled), the databases'."""
    if plan.mover == "kopiur":
        groups = [RuleGroup(name="kopiur", rules=kopiur_rules(plan))]
        if plan.drill_crons:
            groups.append(RuleGroup(name="restore-drills", rules=kopiur_drill_rules(plan)))
    else:
        groups = [RuleGroup(name="volsync", rules=volsync_rules(plan)),
                  RuleGroup(name="kopia-maintenance", rules=maintenance_rules(plan))]
        if plan.drill_crons:
            groups.append(RuleGroup(name="restore-drills", rules=drill_rules(plan.drill_crons)))
    if plan.databases:
        groups.append(RuleGroup(name="postgres", rules=database_rules(plan.databases)))
    return tuple(groups)


def volsync_rules(plan: AlertPlan) -> tuple[Rule, ...]:
    """The controller is there, every source syncs, each repository got a backup in time, no mover
    fails, and every identity a restore reads has a snapshot."""
    volsync = [
        _rule("VolSyncComponentAbsent", "absent(volsync_volume_out_of_sync)", "15m", "critical",
              "VolSync metrics are gone",
              "No volsync_volume_out_of_sync series for 15 minutes: the VolSync controller is down or not scraped.",
              "kubectl -n volsync-system get pods,servicemonitor; check the controller logs and the scrape target."),
        _rule("VolSyncVolumeOutOfSync", "volsync_volume_out_of_sync == 1", "15m", "critical",
              "{{ $labels.obj_namespace }}/{{ $labels.obj_name }} is out of sync",
              "The {{ $labels.role }} {{ $labels.obj_name }} has not completed its last scheduled sync.",
              "kubectl -n {{ $labels.obj_namespace }} describe replicationsource {{ $labels.obj_name }}; read the volsync-src-* job logs; delete a stuck job."),
    ]
    for repo in plan.repositories:
        stale_for = prometheus_duration(stale_after(repo))
        volsync.append(_rule(
            repo.alert,
            # Exact names: Prometheus anchors the regex, and DNS labels hold no metacharacter.
            f'sum by (obj_namespace, obj_name) (increase(volsync_sync_duration_seconds_count{{role="source", obj_name=~"{"|".join(repo.sources)}"}}[{stale_for}])) == 0',
            "10m", "warning",
            "No backup of {{ $labels.obj_namespace }}/{{ $labels.obj_name }} to " + repo.repository + " in " + stale_for,
            f"Backups to repository {repo.repository} run at least every {prometheus_duration(stale_after(repo) / 2)}; none completed in {stale_for}.",
            "Check the ReplicationSource status and mover logs; a wrong password shows as 'repository not initialized'.",
        ))
    volsync.append(_rule(
        "VolSyncMoverFailed",
        "sum by (obj_namespace, obj_name, role, failure_reason) "
        "(increase(volsync_kopia_operation_failure_total[1h])) > 0",
        "5m", "warning",
        "The {{ $labels.role }} mover of {{ $labels.obj_namespace }}/{{ $labels.obj_name }} failed",
        "A Kopia mover Job failed ({{ $labels.failure_reason }}) in the last hour; VolSync retries it.",
        "kubectl -n {{ $labels.obj_namespace }} logs -l app.kubernetes.io/created-by=volsync --tail=100; "
        "a wrong password shows as 'invalid repository password'.",
    ))
    if plan.snapshot_checks:
        volsync.append(snapshots_missing("ReplicationSource and its last sync"))
    return tuple(volsync)


def snapshots_missing(what_writes: str) -> Rule:
    """The program's snapshot check (the same CronJob for either mover) found an identity with no snapshot."""
    return _rule(
        "KopiaSnapshotsMissing", last_run_failed(CHECK_CRONJOBS), "15m", "critical",
        "An identity has no snapshot in the repository checked by {{ $labels.namespace }}/{{ $labels.cronjob }}",
        "A restore of it would succeed with an EMPTY volume (the mover exits 0 when it finds no snapshot): "
        "an app never backed up, a changed identity, or a restore.from that names nothing.",
        "kubectl -n {{ $labels.namespace }} logs job/<the latest {{ $labels.cronjob }} job>: it names each missing "
        f"identity; check that app's {what_writes}.",
    )


def kopiur_rules(plan: AlertPlan) -> tuple[Rule, ...]:
    """Kopiur is there, each repository got every app's backup in time, no policy keeps failing,
    and every identity a restore reads has a snapshot. A policy that never succeeded has no
    timestamp: the snapshot check is what catches it."""
    rules = [_rule("KopiurAbsent", "absent(kopiur_leader_is_leader)", "15m", "critical",
                   "Kopiur's metrics are gone",
                   "No kopiur_leader_is_leader series for 15 minutes: the Kopiur controller is down or not scraped.",
                   "kubectl get pods,servicemonitor in Kopiur's namespace; check the controller logs and the scrape target.")]
    for repo in plan.repositories:
        stale = stale_after(repo)
        rules.append(_rule(
            repo.alert,
            f'time() - kopiur_policy_last_backup_success_timestamp_seconds{{policy=~"{"|".join(repo.sources)}"}} '
            f"> {int(stale.total_seconds())}",
            "10m", "warning",
            "No backup of {{ $labels.namespace }}/{{ $labels.policy }} to " + repo.repository + " in "
            + prometheus_duration(stale),
            f"Backups to repository {repo.repository} run at least every {prometheus_duration(stale / 2)}; the newest "
            f"that succeeded ended more than {prometheus_duration(stale)} ago.",
            "kubectl -n {{ $labels.namespace }} describe snapshotpolicy {{ $labels.policy }}; kubectl -n "
            "{{ $labels.namespace }} get snapshots: read the newest failed run's mover logs; a wrong password shows "
            "as 'invalid repository password'.",
        ))
    rules.append(_rule(
        "KopiurBackupFailing", "kopiur_snapshot_consecutive_failures > 0", "5m", "warning",
        "The backups of {{ $labels.namespace }}/{{ $labels.name }} are failing",
        "Its last runs failed (kopiur_snapshot_consecutive_failures counts them since the last success); Kopiur "
        "runs it again on schedule.",
        "kubectl -n {{ $labels.namespace }} describe snapshotpolicy {{ $labels.name }}; read the newest failed "
        "Snapshot's mover logs.",
    ))
    if plan.maintained:
        rules += kopiur_maintenance_rules(plan.maintained)
    if plan.snapshot_checks:
        rules.append(snapshots_missing("SnapshotPolicy and its last run"))
    if plan.web_uis:
        rules.append(web_ui_down(plan.web_uis))
    return tuple(rules)


def kopiur_maintenance_rules(repositories: tuple[str, ...]) -> list[Rule]:
    """Kopiur runs each repository's maintenance as Jobs of its own scheduling, named
    `<repo>-q-<slot>` / `-f-<slot>` (`-mq-`/`-mf-` when asked for by hand) after the repository's
    Maintenance object, in the maintenance namespace, kept an hour after they finish
    (crates/controller/src/maintenance/mod.rs). kube-state-metrics sees them; Kopiur sets no metric
    of a run's time, so "no maintenance for too long" cannot be told, only a failed or hung run."""
    jobs = f'job_name=~"({"|".join(repositories)})-m?[fq]-[0-9]+"'
    return [
        _rule("KopiaMaintenanceFailure", f"kube_job_status_failed{{{jobs}}} > 0", "5m", "critical",
              "Kopia maintenance job {{ $labels.namespace }}/{{ $labels.job_name }} failed",
              "A maintenance run of Kopiur's failed (its Job is kept an hour); unmaintained repositories grow and "
              "slow down.",
              "kubectl -n {{ $labels.namespace }} logs job/{{ $labels.job_name }}; kubectl -n {{ $labels.namespace }} "
              "describe maintenance: ownership and status."),
        _rule("KopiaMaintenanceTimeout",
              f"(time() - kube_job_status_start_time{{{jobs}}}) > 3 * 3600 "
              f"and on (namespace, job_name) kube_job_status_active{{{jobs}}} > 0",
              "5m", "warning",
              "Kopia maintenance job {{ $labels.job_name }} has run for 3 hours",
              "Kopiur lets a maintenance Job run for 48 hours; one this long is likely stuck on a lock or a slow "
              "repository.",
              "kubectl -n {{ $labels.namespace }} logs job/{{ $labels.job_name }}; delete it if stuck; Kopiur runs "
              "it again on schedule."),
    ]


def kopiur_drill_rules(plan: AlertPlan) -> tuple[Rule, ...]:
    """The drill is the bootstrap policy's deep verification: none in two intervals."""
    overdue = 2 * max(longest_gap(c) for c in plan.drill_crons) + timedelta(hours=6)
    return (_rule(
        "RestoreDrillOverdue",
        f'time() - kopiur_snapshot_verified_timestamp_seconds{{name=~"{"|".join(plan.drilled)}"}} '
        f"> {int(overdue.total_seconds())}",
        "1h", "warning",
        "No restore drill of {{ $labels.namespace }}/{{ $labels.name }} verified in " + prometheus_duration(overdue),
        "The policy's deep verification (a test restore of its latest snapshot into a scratch volume) runs on "
        "the drill schedule; none completed within two intervals.",
        "kubectl -n {{ $labels.namespace }} describe snapshotpolicy {{ $labels.name }}: status.lastVerified and "
        "the verification's mover logs.",
    ),)


def maintenance_rules(plan: AlertPlan) -> tuple[Rule, ...]:
    """Maintenance succeeds, does not hang, is not missing; the web UIs are up."""
    maintenance = [
        _rule("KopiaMaintenanceFailure", last_run_failed(MAINTENANCE_CRONJOBS), "15m", "critical",
              "Kopia maintenance {{ $labels.namespace }}/{{ $labels.cronjob }} did not succeed",
              "Its last scheduled run ended without success (failed, or killed at the 3-hour deadline); "
              "unmaintained repositories grow and slow down.",
              "kubectl -n {{ $labels.namespace }} get jobs -l " + labels.VOLSYNC_GROUP + "/kopia-maintenance=true; "
              "kubectl logs job/<the failed one>; check the repository Secret and mount."),
        _rule("KopiaMaintenanceTimeout",
              '(time() - kube_job_status_start_time{job_name=~"kopia-maint-.*"}) > 2.5 * 3600 '
              'and on (namespace, job_name) kube_job_status_active{job_name=~"kopia-maint-.*"} > 0',
              "5m", "warning",
              "Kopia maintenance job {{ $labels.job_name }} has run for 2.5 hours",
              "The controller kills maintenance jobs at 3 hours; this one is likely stuck on a lock or a slow repository.",
              "kubectl -n {{ $labels.namespace }} logs job/{{ $labels.job_name }}; delete it if stuck; it runs again on schedule."),
    ]
    if plan.maintenance_crons:
        # The seeds' 8 days for weekly maintenance: the interval plus a day.
        window = max(longest_gap(c) for c in plan.maintenance_crons) + timedelta(days=1)
        seconds = int(window.total_seconds())
        last = MAINTENANCE_CRONJOBS.format("kube_cronjob_status_last_successful_time")
        created = MAINTENANCE_CRONJOBS.format("kube_cronjob_created")
        maintenance.append(_rule(
            "KopiaMaintenanceMissing",
            f"time() - {last} > {seconds} or (time() - {created} > {seconds} unless on (namespace, cronjob) {last})",
            "1h", "warning",
            "No successful Kopia maintenance of {{ $labels.namespace }}/{{ $labels.cronjob }} in " + prometheus_duration(window),
            "Maintenance runs on a schedule; its last success is older than its interval plus a day (or it never succeeded).",
            "kubectl get kopiamaintenance -A; check that the CronJob exists and is not suspended.",
        ))
    if plan.web_uis:
        maintenance.append(web_ui_down(plan.web_uis))
    return tuple(maintenance)


def web_ui_down(deployments: tuple[str, ...]) -> Rule:
    """The web UIs' Deployments (the program's, or Kopiur's `<repo>-kopia-ui`) have no ready replica."""
    return _rule(
        "KopiaWebUiDown",
        f'kube_deployment_status_replicas_available{{deployment=~"{"|".join(deployments)}"}} < 1',
        "10m", "warning",
        "Kopia web UI {{ $labels.namespace }}/{{ $labels.deployment }} is down",
        "No replica of the UI is ready: it cannot connect to the repository, or its login Secret is missing.",
        "kubectl -n {{ $labels.namespace }} logs deploy/{{ $labels.deployment }}; check the repository and login Secrets.",
    )


def drill_rules(drill_crons: tuple[str, ...]) -> tuple[Rule, ...]:
    """A drill fails, or none succeeded in two intervals."""
    overdue = prometheus_duration(2 * max(longest_gap(c) for c in drill_crons) + timedelta(hours=6))
    return (
        _rule("RestoreDrillFailing", 'volsync_volume_out_of_sync{role="destination", obj_name=~".+-drill"} == 1', "2h", "critical",
              "Restore drill {{ $labels.obj_namespace }}/{{ $labels.obj_name }} is failing",
              "The scheduled test restore of this app's latest snapshot did not complete: its backups may not be restorable.",
              "kubectl -n {{ $labels.obj_namespace }} describe replicationdestination {{ $labels.obj_name }}; read the volsync-dst-* job logs."),
        _rule("RestoreDrillOverdue",
              f'sum by (obj_namespace, obj_name) (increase(volsync_sync_duration_seconds_count{{role="destination", obj_name=~".+-drill"}}[{overdue}])) == 0',
              "1h", "warning",
              "No successful restore drill of {{ $labels.obj_namespace }}/{{ $labels.obj_name }} in " + overdue,
              "Restore drills run on a schedule; none succeeded within two intervals.",
              "Check the drill ReplicationDestination and its trigger schedule; run one by changing spec.trigger.manual."),
    )


def cnpg_pods(databases: tuple[tuple[str, str], ...], metric: str, matcher: str = "") -> str:
    """`metric` of the instances of these clusters, one selector per namespace joined by `or`.
    CloudNative-PG's exporter adds no cluster label: the PodMonitor's scrape labels `namespace`
    and `pod` (`<cluster>-<n>`) are what tell the clusters apart."""
    namespaces: dict[str, list[str]] = {}
    for namespace, name in databases:
        namespaces.setdefault(namespace, []).append(name)
    return " or ".join(f'{metric}{{{matcher}namespace="{ns}", pod=~"({"|".join(sorted(dbs))})-[0-9]+"}}'
                       for ns, dbs in sorted(namespaces.items()))


def database_rules(databases: tuple[tuple[str, str], ...]) -> tuple[Rule, ...]:
    """WAL archiving through pgBackRest. CloudNative-PG's own backup alerts read
    `cnpg_collector_last_available_backup_timestamp`, which plugin backups never set; its
    `pg_stat_archiver` query keeps counting with a plugin archiver, as PostgreSQL's archiver runs
    the plugin through archive_command. `last_failed_time` and `last_archived_time` are epochs
    (-1 before the first), so the archiver failing since its last success is one comparison; a
    stalled archiver (an archive-push that hangs fails nothing) is WAL waiting in pg_wal
    (`cnpg_collector_pg_wal_archive_status{value="ready"}`, CloudNative-PG's count of `.ready`
    files) while nothing was archived for half an hour. An idle database waits for nothing. A
    failed backup is read from its Backup object through kube-state-metrics (cnpg_backups), and
    a backup that stopped happening from the check CronJob's last run."""
    failed, archived = (cnpg_pods(databases, f"cnpg_pg_stat_archiver_{m}") for m in ("last_failed_time", "last_archived_time"))
    ready = cnpg_pods(databases, "cnpg_collector_pg_wal_archive_status", 'value="ready", ')
    # Clusters are namespaced: the failed-backup query takes one term per namespace.
    by_namespace = [(ns, tuple(db for n, db in databases if n == ns)) for ns in sorted({n for n, _ in databases})]
    return (
        _rule("PgBackRestBackupsStale", last_run_failed(PGBACKREST_CHECK_CRONJOBS), "15m", "critical",
              "A pgBackRest repository checked by {{ $labels.namespace }}/{{ $labels.cronjob }} has no recent backup",
              "The backup check's last run failed: a repository has no full backup, or its newest full or newest "
              "backup of any type is older than its schedules allow (a failing or unscheduled backup).",
              "kubectl -n {{ $labels.namespace }} logs job/<the latest {{ $labels.cronjob }} job>: it names the "
              "repository and the age; then kubectl -n {{ $labels.namespace }} get backups."),
        _rule("PgBackRestBackupFailed", " or ".join(cnpg_backups.newest_failed(ns, dbs) for ns, dbs in by_namespace),
              "5m", "critical",
              "Backup {{ $labels.namespace }}/{{ $labels.backup }} of {{ $labels.cluster }} failed",
              "The newest finished backup of its schedule failed ({{ $labels.phase }}), and none of that "
              "schedule has completed since. Read from the Backup objects through kube-state-metrics "
              "(the custom-resource config in the README): plugin backups run in the instance pod, not as a Job.",
              "kubectl -n {{ $labels.namespace }} get backup {{ $labels.backup }} -o jsonpath='{.status.error}'; "
              "then kubectl -n {{ $labels.namespace }} logs <the {{ $labels.cluster }} primary> -c plugin-pgbackrest."),
        _rule("PostgresWalArchivingFailing", f"({failed}) > on (namespace, pod) ({archived})", "5m", "critical",
              "WAL archiving of {{ $labels.namespace }}/{{ $labels.pod }} to pgBackRest is failing",
              "Archiving a WAL segment failed and none succeeded since: point-in-time recovery ends at the last "
              "archived segment, and pg_wal grows until the volume is full.",
              "kubectl -n {{ $labels.namespace }} logs {{ $labels.pod }} -c plugin-pgbackrest; check the repository "
              "credentials and endpoint; `pgbackrest info` in that container shows which repository is behind."),
        _rule("PostgresWalArchivingStalled", f"time() - ({archived}) > 1800 and on (namespace, pod) ({ready}) > 0",
              "10m", "warning",
              "WAL of {{ $labels.namespace }}/{{ $labels.pod }} has waited half an hour to be archived",
              "Segments are ready in pg_wal and none was archived for 30 minutes: the point-in-time recovery "
              "window stops growing while the archiver is stuck or far behind.",
              "kubectl -n {{ $labels.namespace }} logs {{ $labels.pod }} -c plugin-pgbackrest; a hung archive-push "
              "or a slow store: check the repository endpoint and the WAL spool volume."),
    )


class BackupAlerts(pulumi.ComponentResource):
    rule: k8s.apiextensions.CustomResource
    """The PrometheusRule."""
    rule_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: BackupAlertsArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(tree.ALERTS, name, None, opts)
        plan = args.plan
        assert plan.rule is not None  # the stack makes this component only when alerts are enabled
        node = plan.rule.rules
        groups = rule_groups(plan)
        self.rule = k8s.apiextensions.CustomResource(
            node.resource,
            api_version=API_VERSION,
            kind=node.kind,
            metadata={**node.metadata, "labels": {**labels.MANAGED_BY, **plan.rule_labels}},
            spec=PrometheusRuleSpec(groups=groups).to_wire(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.rule_names = known([r.alert for g in groups for r in g.rules])
        self.register_outputs({"ruleNames": self.rule_names})
