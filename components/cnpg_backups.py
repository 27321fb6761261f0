"""CloudNative-PG's Backup objects as metrics, for the failed-backup alert.

A plugin backup runs inside the instance pod, not as a Job. CloudNative-PG records its outcome on
the Backup object (`status.phase`); of its own metrics, the last available backup is never set on
this path, and the last failed one (`cnpg_collector_last_failed_backup_timestamp`) goes through
the cluster's status, which only the operator writes, so nothing here could show a rule on it
firing. The one reader that turns Backup objects into metrics is kube-state-metrics, through a
custom-resource config. This module is that config and the names the alert reads, in one place:
the README gives it as kube-state-metrics Helm values (tests/test_readme.py keeps the two equal),
and tests/e2e/test_backup_objects.py runs the real kube-state-metrics with the README's copy.

A ScheduledBackup names each Backup it makes `<scheduled backup>-<time>` and labels it with its
own name (`cnpg.io/scheduled-backup`) and the cluster's (CloudNative-PG's scheduled backup
controller); a Backup made by hand carries no `cnpg.io/scheduled-backup`, and the alert leaves
it to whoever made it: nothing later would ever clear it.
"""

from __future__ import annotations

from typing import Any

from .pgbackrest import CNPG_API_VERSION

GROUP, VERSION = CNPG_API_VERSION.split("/")

#: The metric names: `kube_cnpg_backup_status_phase{phase=...}` (1 for the object's phase, 0 for
#: the others) and `kube_cnpg_backup_created` (its creation time, epoch seconds).
PREFIX = "kube_cnpg_backup"
PHASE = f"{PREFIX}_status_phase"
CREATED = f"{PREFIX}_created"

#: CloudNative-PG's Backup phases (its BackupPhase constants). `walArchivingFailing`: the backup
#: could not start because WAL archiving does not work (an instance manager that retries it makes
#: it `running` again, out of the finished).
FAILED_PHASES = ("failed", "walArchivingFailing")
DONE_PHASES = ("completed", *FAILED_PHASES)
PHASES = ("pending", "started", "running", "finalizing", *DONE_PHASES)

#: The labels each series carries, besides kube-state-metrics' `customresource_*`.
LABELS = {
    "namespace": ["metadata", "namespace"],
    "backup": ["metadata", "name"],
    "cluster": ["spec", "cluster", "name"],
    "scheduled_backup": ["metadata", "labels", "cnpg.io/scheduled-backup"],
}


def kube_state_metrics_config() -> dict[str, Any]:
    """The CustomResourceStateMetrics document (kube-state-metrics' `--custom-resource-state-config`)."""
    return {
        "kind": "CustomResourceStateMetrics",
        "spec": {"resources": [{
            "groupVersionKind": {"group": GROUP, "version": VERSION, "kind": "Backup"},
            "metricNamePrefix": PREFIX,
            "labelsFromPath": LABELS,
            "metrics": [
                {"name": PHASE.removeprefix(PREFIX + "_"), "help": "The phase of a CloudNative-PG Backup.",
                 "each": {"type": "StateSet",
                          "stateSet": {"labelName": "phase", "path": ["status", "phase"], "list": list(PHASES)}}},
                {"name": CREATED.removeprefix(PREFIX + "_"), "help": "When a CloudNative-PG Backup was made.",
                 "each": {"type": "Gauge", "gauge": {"path": ["metadata", "creationTimestamp"]}}},
            ],
        }]},
    }


def kube_state_metrics_rules() -> list[dict[str, Any]]:
    """What kube-state-metrics' ServiceAccount must be allowed to read for that config: the
    Backups, and the CustomResourceDefinitions it discovers them through."""
    return [{"apiGroups": [GROUP], "resources": ["backups"], "verbs": ["list", "watch"]},
            {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
             "verbs": ["list", "watch"]}]


def newest_failed(namespace: str, clusters: tuple[str, ...]) -> str:
    """PromQL: the newest finished Backup of a schedule of these clusters failed (its phase series,
    one per Backup). Newest by creation among the finished: the next Backup, still pending or
    running, does not clear it, and a later one that completes does. Per schedule, so that one
    store's later success does not hide another's failure; Backups made by hand are left out."""
    selector = f'namespace="{namespace}", cluster=~"({"|".join(sorted(clusters))})", scheduled_backup!=""'
    finished = (f"{CREATED}{{{selector}}} and on (namespace, backup) "
                f'({PHASE}{{{selector}, phase=~"{"|".join(DONE_PHASES)}"}} == 1)')
    group = "namespace, cluster, scheduled_backup"
    newest = f"({finished}) == on ({group}) group_left () max by ({group}) ({finished})"
    return f'{PHASE}{{{selector}, phase=~"{"|".join(FAILED_PHASES)}"}} == 1 and on (namespace, backup) ({newest})'
