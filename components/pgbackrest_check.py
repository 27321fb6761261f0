"""PgBackRestCheck: a CronJob that fails when a repository's newest backup is older than its
schedules allow, for `PgBackRestBackupsStale` to read through kube-state-metrics.

Nothing else reports it: CloudNative-PG's `lastSuccessfulBackup` and its
`cnpg_collector_last_available_backup_timestamp` are never set for plugin backups, and the
plugin's own `last_available_backup_timestamp` covers neither a repository nor a backup type. The
check asks pgBackRest itself (`pgbackrest --repo=N info`) in the plugin's sidecar image, with the
environment the plugin would build from the Stanza.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from . import labels, tree
from .database_plan import DatabaseCheckPlan, RepositoryLimits
from .pgbackrest import S3Repository, StanzaConfiguration

#: The postgres user of the plugin's sidecar image (`backups:defaults.pgbackrestImage`).
IMAGE_UID = 26


def check_script(stanza: str, limits: tuple[RepositoryLimits, ...]) -> str:
    """Fail naming every repository whose stanza is not ok, or whose newest full, or newest backup
    of any type, is missing or older than its limit."""
    # `info` prints each backup as `<type> backup: <label>` and then `timestamp start/stop:
    # <start> / <stop>`; the newest is the latest stop of the wanted types, whatever the order
    # (a stanza upgrade lists the prior database's backups too).
    stops = ("awk -v kinds=\"$2\" '$2 == \"backup:\" && $1 ~ (\"^(\" kinds \")$\") {want=1; next} "
             "want && /timestamp start\\/stop:/ {print $(NF-1), $NF; want=0}'")
    lines = [
        'now=$(date +%s); failed=""',
        # newest DATE TIME ...: the latest of these times as an epoch (0: none); a time `date`
        # cannot read is printed instead, and the function fails.
        'newest() { n=0; while [ $# -ge 2 ]; do e=$(date -d "$1 $2" +%s 2>/dev/null) || { echo "$1 $2"; return 1; }; '
        '[ "$e" -le "$n" ] || n=$e; shift 2; done; echo $n; }',
        # judge WHERE WHAT KINDS LIMIT: the newest backup of KINDS in $out against LIMIT seconds.
        'judge() { e=$(newest $(printf "%s\\n" "$out" | ' + stops.replace('"$2"', '"$3"') + ')) || '
        '{ failed="$failed; $1: unreadable backup time $e"; return; }; '
        'if [ "$e" -eq 0 ]; then failed="$failed; $1: no $2"; '
        'elif [ $((now - e)) -gt "$4" ]; then failed="$failed; $1: the newest $2 is $((now - e))s old (limit ${4}s)"; fi; }',
        # check NUMBER NAME FULL-LIMIT ANY-LIMIT; a stanza in error other than "no valid backups"
        # (missing, unreachable, wrong keys: info still exits 0) is said as pgBackRest says it.
        'check() { where="$2 (repo$1)"; out=$(pgbackrest --repo="$1" info 2>&1) || { failed="$failed; $where: '
        'pgbackrest info failed: $(printf %s "$out" | tr "\\n" " " | cut -c1-300)"; return; }; '
        'status=$(printf "%s\\n" "$out" | awk \'$1 == "status:" {sub(/^ *status: /, ""); print; exit}\'); '
        'case "$status" in ok|"error (no valid backups)") ;; *) failed="$failed; $where: stanza status $status"; return;; esac; '
        'judge "$where" "full backup" full "$3"; judge "$where" "backup of any type" "full|diff|incr" "$4"; }',
    ]
    for limit in limits:
        lines.append(f"check {limit.number} {shlex.quote(limit.name)} {int(limit.full.total_seconds())} "
                     f"{int(limit.any.total_seconds())}")
    lines.append(f'if [ -n "$failed" ]; then echo "stale pgBackRest backups of stanza {stanza}:${{failed#;}}" >&2; exit 1; fi')
    lines.append(f"echo 'every repository has a recent full backup and a recent backup ({len(limits)})'")
    return "\n".join(lines)


def repository_env(number: int, entry: S3Repository) -> list[k8s.core.v1.EnvVarArgs]:
    """What the plugin's ToEnv and getEnvVarForS3 give pgBackRest for `s3Repositories[number-1]`."""
    prefix = f"PGBACKREST_REPO{number}_"
    plain = {"TYPE": "s3", "S3_BUCKET": entry.bucket, "S3_ENDPOINT": entry.endpoint, "S3_REGION": entry.region,
             "S3_URI_STYLE": entry.uri_style, "S3_VERIFY_TLS": "y" if entry.verify_tls else "n", "PATH": entry.repo_path}
    refs = {"S3_KEY": entry.secret_ref.access_key_id, "S3_KEY_SECRET": entry.secret_ref.secret_access_key}
    if entry.cipher_config is not None:
        plain["CIPHER_TYPE"] = entry.cipher_config.type
        refs["CIPHER_PASS"] = entry.cipher_config.encryption_pass
    env = [k8s.core.v1.EnvVarArgs(name=prefix + k, value=v) for k, v in plain.items()]
    return env + [
        k8s.core.v1.EnvVarArgs(name=prefix + k, value_from=k8s.core.v1.EnvVarSourceArgs(
            secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=ref.name, key=ref.key)))
        for k, ref in refs.items()
    ]


@dataclass(frozen=True)
class PgBackRestCheckArgs:
    plan: DatabaseCheckPlan
    """The limits per repository, the schedule (after the day's backups), the CronJob's name."""
    database: str
    stanza: StanzaConfiguration
    """The Stanza's configuration: its name and entries, in its order (pgBackRest's repo1, repo2, ...)."""


class PgBackRestCheck(pulumi.ComponentResource):
    cronjob: k8s.batch.v1.CronJob

    def __init__(self, name: str, args: PgBackRestCheckArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(tree.DATABASE_CHECK, name, None, opts)
        plan, stanza = args.plan, args.stanza
        env = [k8s.core.v1.EnvVarArgs(name="PGBACKREST_STANZA", value=stanza.name),
               k8s.core.v1.EnvVarArgs(name="PGBACKREST_LOG_LEVEL_FILE", value="off")]
        for number, entry in enumerate(stanza.s3_repositories, start=1):
            env += repository_env(number, entry)
        container = k8s.core.v1.ContainerArgs(
            name="pgbackrest-check", image=plan.image, command=["/bin/sh", "-c", check_script(stanza.name, plan.limits)],
            env=env,
            security_context=k8s.core.v1.SecurityContextArgs(
                allow_privilege_escalation=False, read_only_root_filesystem=True,
                capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
            ),
        )
        self.cronjob = k8s.batch.v1.CronJob(
            plan.cronjob.resource,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=plan.cronjob.name, namespace=plan.cronjob.namespace,
                labels={**labels.MANAGED_BY, labels.DATABASE: args.database}),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=plan.schedule, concurrency_policy="Forbid",
                job_template=k8s.batch.v1.JobTemplateSpecArgs(spec=k8s.batch.v1.JobSpecArgs(
                    # A hung check would hold the CronJob (Forbid) and keep its alert from firing.
                    backoff_limit=1, active_deadline_seconds=1800,
                    template=k8s.core.v1.PodTemplateSpecArgs(spec=k8s.core.v1.PodSpecArgs(
                        restart_policy="OnFailure",
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            run_as_user=IMAGE_UID, run_as_group=IMAGE_UID, run_as_non_root=True),
                        containers=[container],
                    )),
                )),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
