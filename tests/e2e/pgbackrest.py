"""What Dalibo's pgBackRest plugin gives pgBackRest, from the objects this program renders.

The plugin (github.com/dalibo/cnpg-plugin-pgbackrest, read at v0.0.3-7-g6c5d20c) is not served
by the module proxy, so its Go code cannot run here. This module is its mapping written down, a
row per field, each naming where it comes from:

- The plugin writes no pgbackrest.conf and passes no option flags: `StanzaConfiguration.ToEnv`
  (api/v1/stanza_types.go) reflects over the struct's `env:` tags into `PGBACKREST_*` variables
  (internal/utils/envvar.go StructToEnvVars). `s3Repositories` become repo1..N in list order
  (nestedEnvPrefix "REPO"). Zero values are left out, booleans never (a missing `verifyTLS` is
  `n`).
- Credentials come from the Secrets the refs name (internal/config/config.go getEnvVarForS3).
- `retentionPolicy.history` is tagged `ENV:"HISTORY"` instead of `env:` and so reaches
  pgBackRest as nothing; the program sets the option through `customEnvVar` instead.
- WAL: the sidecar runs `pgbackrest archive-push <wal>` (no `--repo`: every repository) and
  `pgbackrest archive-get <wal> <dest>` (internal/instance/wal.go), after `stanza-create` when
  `pgbackrest info` shows the stanza missing (pgbackrest.go EnsureStanzaExists). Async archiving
  spools to /var/spool/pgbackrest (lifecycle.go; no spool-path variable).
- Backups: `pgbackrest backup` with PGBACKREST_REPO from `selectedRepository`, PGBACKREST_TYPE
  from `backupType` and PGBACKREST_ARCHIVE_CHECK=n (internal/instance/backup.go, pgbackrest.go).
- Restore: the Cluster's `bootstrap.recovery.source` names an `externalClusters` entry whose
  plugin parameters name the Stanza; `recoveryTarget.targetTime` becomes PGBACKREST_TYPE=time
  with PGBACKREST_TARGET, `backupID` PGBACKREST_SET; no repository variable, so pgBackRest takes
  the first repository that holds a backup for the target (internal/restore/restore.go). The
  plugin asks for `recovery_target_action = promote`.

What stands for the cluster: a local S3 server per store behind TLS from a test CA (DNS and trust
are the test's: `REPOn_STORAGE_HOST/PORT/CA_FILE`), and the data directory, socket and lock, log
and spool paths of a local PostgreSQL instead of the pod's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

PREFIX = "PGBACKREST_"

#: stanzaConfiguration scalars (stanza_types.go env tags).
STANZA_FIELDS = {"name": "STANZA", "processMax": "PROCESS_MAX", "startFast": "START_FAST", "delta": "DELTA",
                 "logLevel": "LOG_LEVEL_CONSOLE"}
#: Booleans of StanzaConfiguration that are always emitted (plain bool fields): absent means n.
STANZA_BOOLEANS = ("startFast", "delta")
#: stanzaConfiguration.archive (a struct with a plain bool `async`).
ARCHIVE_FIELDS = {"async": "ARCHIVE_ASYNC", "pushQueueMax": "ARCHIVE_PUSH_QUEUE_MAX",
                  "getQueueMax": "ARCHIVE_GET_QUEUE_MAX"}
#: stanzaConfiguration.compressConfig.
COMPRESS_FIELDS = {"type": "COMPRESS_TYPE", "level": "COMPRESS_LEVEL"}
#: s3Repositories[n-1] -> PGBACKREST_REPO<n>_<VAR>; verifyTLS is a plain bool (always emitted).
S3_FIELDS = {"bucket": "S3_BUCKET", "endpoint": "S3_ENDPOINT", "region": "S3_REGION", "uriStyle": "S3_URI_STYLE",
             "verifyTLS": "S3_VERIFY_TLS", "repoPath": "PATH"}
#: s3Repositories[].retentionPolicy; history: None (the tag bug above).
RETENTION_FIELDS = {"full": "RETENTION_FULL", "fullType": "RETENTION_FULL_TYPE", "diff": "RETENTION_DIFF",
                    "archive": "RETENTION_ARCHIVE", "archiveType": "RETENTION_ARCHIVE_TYPE", "history": None}
#: s3Repositories[].secretRef / cipherConfig: Secret refs read by getEnvVarForS3.
SECRET_FIELDS = {("secretRef", "accessKeyId"): "S3_KEY", ("secretRef", "secretAccessKey"): "S3_KEY_SECRET",
                 ("cipherConfig", "encryptionPass"): "CIPHER_PASS"}
#: Added to every stanza by ToEnv; the lock and data paths are the pod's, replaced by `local`.
FIXED = {"LOG_LEVEL_FILE": "off"}

#: A Secret's value: (namespace, name, key) -> value, as the kubelet would mount it.
SecretLookup = Callable[[str, str, str], str]


class Unmapped(AssertionError):
    """A field of a rendered object this table has no row for: the table must grow first."""


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "y" if value else "n"
    return str(value)


def _fields(body: Mapping[str, Any], rows: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = set(body) - set(rows)
    if unknown:
        raise Unmapped(f"{where}: no row for {sorted(unknown)}")
    return {key: body[key] for key in rows if key in body}


def stanza_env(stanza: Mapping[str, Any], secret: SecretLookup) -> dict[str, str]:
    """The pgBackRest environment of a rendered Stanza object."""
    namespace = stanza["metadata"]["namespace"]
    conf = dict(stanza["spec"]["stanzaConfiguration"])
    env: dict[str, str] = {f"{PREFIX}{k}": v for k, v in FIXED.items()}
    # customEnvVar first, then the typed fields (ToEnv's order: a typed field wins).
    env.update(conf.pop("customEnvVar", {}))
    archive, compress = conf.pop("archive", {}), conf.pop("compressConfig", {})
    repositories = conf.pop("s3Repositories", [])
    for key, value in _fields(conf, STANZA_FIELDS, "stanzaConfiguration").items():
        if value not in (0, ""):
            env[PREFIX + STANZA_FIELDS[key]] = _value(value)
    for key in STANZA_BOOLEANS:
        env.setdefault(PREFIX + STANZA_FIELDS[key], "n")
    for key, value in _fields(archive, ARCHIVE_FIELDS, "stanzaConfiguration.archive").items():
        env[PREFIX + ARCHIVE_FIELDS[key]] = _value(value)
    env.setdefault(PREFIX + ARCHIVE_FIELDS["async"], "n")
    for key, value in _fields(compress, COMPRESS_FIELDS, "stanzaConfiguration.compressConfig").items():
        env[PREFIX + COMPRESS_FIELDS[key]] = _value(value)
    for number, repository in enumerate(repositories, start=1):
        env.update(_repository_env(number, dict(repository), namespace, secret))
    return env


def _repository_env(number: int, repository: dict[str, Any], namespace: str, secret: SecretLookup) -> dict[str, str]:
    where, prefix = f"s3Repositories[{number - 1}]", f"{PREFIX}REPO{number}_"
    env = {f"{prefix}TYPE": "s3", f"{prefix}S3_VERIFY_TLS": "n"}
    retention = repository.pop("retentionPolicy", {})
    refs = {part: repository.pop(part, None) for part in ("secretRef", "cipherConfig")}
    for key, value in _fields(repository, S3_FIELDS, where).items():
        env[prefix + S3_FIELDS[key]] = _value(value)
    for key, value in _fields(retention, RETENTION_FIELDS, f"{where}.retentionPolicy").items():
        variable = RETENTION_FIELDS[key]
        if variable is not None and value not in (0, ""):
            env[prefix + variable] = _value(value)
    cipher = refs["cipherConfig"] or {}
    if cipher:
        _fields(cipher, {"type": 0, "encryptionPass": 0}, f"{where}.cipherConfig")
        env[f"{prefix}CIPHER_TYPE"] = cipher.get("type", "aes-256-cbc")
    for (part, field), variable in SECRET_FIELDS.items():
        ref = (refs[part] or {}).get(field)
        if ref is not None:
            env[prefix + variable] = secret(namespace, ref["name"], ref["key"])
    if refs["secretRef"]:
        _fields(refs["secretRef"], {"accessKeyId": 0, "secretAccessKey": 0}, f"{where}.secretRef")
    return env


def backup_env(scheduled_backup: Mapping[str, Any]) -> dict[str, str]:
    """What a Backup made from this ScheduledBackup adds for `pgbackrest backup` (backup.go)."""
    spec = scheduled_backup["spec"]
    assert spec["method"] == "plugin" and spec["pluginConfiguration"]["name"] == "pgbackrest.dalibo.com"
    parameters = _fields(spec["pluginConfiguration"]["parameters"], {"selectedRepository": 0, "backupType": 0},
                         "pluginConfiguration.parameters")
    env = {f"{PREFIX}REPO": parameters.get("selectedRepository", "1"), f"{PREFIX}ARCHIVE_CHECK": "n"}
    if "backupType" in parameters:
        env[f"{PREFIX}TYPE"] = parameters["backupType"]
    return env


def recovery_stanza(cluster: Mapping[str, Any]) -> str:
    """The Stanza a recovering Cluster restores from: bootstrap.recovery.source -> externalClusters."""
    spec = cluster["spec"]
    source = spec["bootstrap"]["recovery"]["source"]
    (external,) = [c for c in spec["externalClusters"] if c["name"] == source]
    plugin = external["plugin"]
    assert plugin["name"] == "pgbackrest.dalibo.com", plugin
    return str(plugin["parameters"]["stanzaRef"])


def restore_env(cluster: Mapping[str, Any]) -> dict[str, str]:
    """What the recovery adds for `pgbackrest restore` (restore.go): the target, no repository."""
    target = _fields(cluster["spec"]["bootstrap"]["recovery"].get("recoveryTarget", {}),
                     {"targetTime": 0, "backupID": 0}, "bootstrap.recovery.recoveryTarget")
    env = {f"{PREFIX}ARCHIVE_CHECK": "n"}
    if "backupID" in target:
        env[f"{PREFIX}SET"] = target["backupID"]
    if "targetTime" in target:
        env.update({f"{PREFIX}TYPE": "time", f"{PREFIX}TARGET": target["targetTime"]})
    return env
