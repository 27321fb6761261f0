"""`backups:databases`: CloudNative-PG clusters backed up with pgBackRest to S3 repositories."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import AfterValidator, Field

from .cron import validate_six_field_schedule
from .fields import INT32_MAX, BucketName, ClassName, Count, DnsLabel, Model, Quantity, RepositoryNames, Rfc3339
from .shared import SecretValue


def _keeps_a_full_backup(value: int) -> int:
    if value < 1:
        raise ValueError(f"{value} keeps no full backup: use 1 or more (pgBackRest expires the rest)")
    return value


class DatabaseRetention(Model):
    """pgBackRest retention per repository. `walDays` is what people mean ("7 days of WAL");
    pgBackRest counts WAL retention in backups, so it becomes `archive: walDays` with
    `archiveType: diff` and one full-or-differential backup every day (see postgres.py)."""

    full: Annotated[int, Field(strict=True, le=INT32_MAX), AfterValidator(_keeps_a_full_backup)] = 14
    diff: Count = 30
    wal_days: Annotated[int, Field(strict=True, ge=1, le=INT32_MAX)] = 7
    history_days: Count = 30


SixFieldCron = Annotated[str, AfterValidator(validate_six_field_schedule)]


class DatabaseSchedule(Model):
    """When backups run, per repository in the order of `repositories`: a weekly full backup and
    a differential one on the other days. Defaults: 03:00 for the first repository, 04:00 for
    the second, and so on (the seed's B2 at 03:00, R2 at 04:00), fulls on Sunday."""

    full: Optional[tuple[SixFieldCron, ...]] = None
    diff: Optional[tuple[SixFieldCron, ...]] = None


class WalSpool(Model):
    """The PVC pgBackRest spools WAL to with async archiving; the plugin crashes without a
    storage class."""

    storage_class: Optional[ClassName] = None
    size: Quantity = "5Gi"


class Encryption(Model):
    """Client-side pgBackRest encryption (aes-256-cbc); the passphrase as a secret."""

    passphrase: SecretValue


class DatabaseRecovery(Model):
    """The Cluster, when it is made, starts from a pgBackRest backup (CloudNative-PG's
    `bootstrap.recovery`) instead of an empty database: the latest state, or the state at
    `restoreAsOf`. It reads this database's stanza, or with `from` that of another database of
    the namespace; from any of its repositories (pgBackRest takes the first that holds a backup
    for the target, in the order of `repositories`), or with `repository` from that one only."""

    from_: Optional[DnsLabel] = Field(default=None, alias="from")
    repository: Optional[DnsLabel] = None
    restore_as_of: Optional[Rfc3339] = None


class Database(Model):
    """A CloudNative-PG cluster backed up with pgBackRest."""

    name: DnsLabel
    namespace: DnsLabel
    repositories: RepositoryNames
    retention: DatabaseRetention = DatabaseRetention()
    #: Bucket in every repository's store; default: the database name.
    bucket: Optional[BucketName] = None
    schedule: DatabaseSchedule = DatabaseSchedule()
    manage_cluster: bool = False
    #: pgBackRest stanza name; default: the database name. Renaming it orphans the backups.
    stanza: Optional[DnsLabel] = None
    #: Set to true, for one change, to rename `stanza` on purpose.
    allow_stanza_rename: bool = False
    wal_spool: WalSpool = WalSpool()
    encryption: Optional[Encryption] = None
    instances: Annotated[int, Field(strict=True, ge=1, le=99)] = 1
    #: Bootstrap the managed Cluster from a backup when it is made (a rebuild, a clone).
    recovery: Optional[DatabaseRecovery] = None
    storage_size: Quantity = "10Gi"

    @property
    def bucket_name(self) -> str:
        return self.bucket or self.name

    @property
    def stanza_name(self) -> str:
        return self.stanza or self.name
