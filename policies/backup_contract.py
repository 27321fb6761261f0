"""What the program and the policy pack both know: the one source of their contract.

The pack judges what reaches the engine, by any road (this program, a hand-written Secret, a
chart), so it recognises objects by these labels, API groups and mover variables, and compares
repository targets with this normalisation; the program writes the same labels and variables
and refuses, in its config check, what the pack would refuse later. Plain Python with no imports
beyond the standard library: it sits in the pack's directory (on the path the engine gives the
pack), so the pack installs on its own, and the program imports it from there. It is not inside
the `backup_policies` package: importing that package loads pulumi-policy and every policy,
which the program has no use for. `tests/test_contract.py` fails when either side spells one
of these values itself.
"""

from __future__ import annotations

import ipaddress
import posixpath

#: The API group of the VolSync fork's custom resources.
VOLSYNC_GROUP = "volsync.backube"
#: The API group of Kopiur's custom resources (the second mover).
KOPIUR_GROUP = "kopiur.home-operations.com"
#: The API group of external-secrets.io's ExternalSecret (a Secret written from a store).
EXTERNAL_SECRETS_GROUP = "external-secrets.io"

# The variables of a Kopia repository Secret that the fork's mover reads (mover-kopia entry.sh).
KOPIA_REPOSITORY = "KOPIA_REPOSITORY"
KOPIA_PASSWORD = "KOPIA_PASSWORD"
KOPIA_S3_ENDPOINT = "KOPIA_S3_ENDPOINT"
KOPIA_S3_DISABLE_TLS = "KOPIA_S3_DISABLE_TLS"
#: Ignored by the mover when KOPIA_REPOSITORY is set: a per-app prefix here does nothing.
KOPIA_S3_IGNORED_WITH_URL = ("KOPIA_S3_PREFIX", "KOPIA_S3_BUCKET")
AWS_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
AWS_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
#: The mover reads the region from either; the program sets both.
AWS_REGIONS = ("AWS_REGION", "AWS_DEFAULT_REGION")

#: Every retention key of a ReplicationSource's `spec.kopia.retain`: the pack wants each one set
#: (an unset key is Kopia's default, 24 monthly and 3 yearly), and the program's config has them all.
RETAIN_KEYS = ("latest", "hourly", "daily", "weekly", "monthly", "yearly")
#: The same keys in a Kopiur SnapshotPolicy's `spec.retention`, in the same order.
KOPIUR_RETENTION_KEYS = ("keepLatest", "keepHourly", "keepDaily", "keepWeekly", "keepMonthly", "keepAnnual")

#: On everything the program makes.
MANAGED_BY = {"app.kubernetes.io/managed-by": "homelab-backups"}
#: On every repository Secret; the value is the repository name from config.
REPOSITORY_LABEL = "backups.homelab.dev/repository"
#: Annotation on every repository Secret: the real target (a filesystem URL does not say it).
TARGET_ANNOTATION = "backups.homelab.dev/target"
#: On every PVC whose data a ReplicationSource backs up.
BACKED_UP_LABEL = "backups.homelab.dev/backed-up"
#: On every object of one database's pgBackRest backup; the value is the database name.
DATABASE_LABEL = "backups.homelab.dev/database"
#: On every object that belongs to one app; the value is the app name.
APP_LABEL = "backups.homelab.dev/app"
#: On the extra ReplicationSource of `backupNow` (value "backupNow"): the one source with a manual
#: trigger and no schedule that the pack lets through; the app's scheduled sources never have it.
ONE_OFF_LABEL = "backups.homelab.dev/one-off"

#: Storage classes no backed-up volume may use unless configured otherwise: CephFS's snapshots
#: are not crash-consistent copies a mover can read (seed 001).
DEFAULT_BANNED_STORAGE_CLASSES = ("ceph-filesystem",)

#: Ports a host may name or leave out with the same meaning (S3 speaks TLS unless told not to).
_DEFAULT_PORTS = {"s3": "443", "nfs": "2049"}
#: Schemes whose host part is a DNS name (case-insensitive); a CephFS volume handle is not.
_HOST_SCHEMES = ("s3", "nfs")


def normalized_target(target: str) -> str:
    """One spelling per repository target, so two spellings of one place compare equal: the
    host of an NFS or S3 target lower-cased with a trailing dot and a default port dropped, the
    path without repeated or trailing slashes. `nfs://NAS.home:2049//mnt/kopia/` and
    `nfs://nas.home/mnt/kopia` are one repository, and must carry one password."""
    scheme, sep, rest = target.partition("://")
    if not sep:
        return target
    scheme = scheme.lower()
    host, _, path = rest.partition("/")
    if scheme in _HOST_SCHEMES:
        host = host.lower()
        name, colon, port = host.rpartition(":")
        if colon and port == _DEFAULT_PORTS[scheme]:
            host = name
        host = host.rstrip(".")
    path = posixpath.normpath("/" + path.lstrip("/"))
    return f"{scheme}://{host}{'' if path == '/' else path}"


def overlaps(one: str, other: str) -> bool:
    """True when two targets are one place or one lies inside the other (an NFS export's
    subdirectory, a path below a CephFS root): each owner would maintain, sync or expire what the
    other wrote. Both are normalised here, so any spelling may be passed."""
    a, b = normalized_target(one), normalized_target(other)
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


#: Host suffixes of private networks: TLS may be off towards these (Garage on the LAN).
PRIVATE_SUFFIXES = (".local", ".lan", ".home", ".internal", ".home.arpa", ".cluster.local", ".svc")


def is_private_host(host: str) -> bool:
    """A private, loopback or link-local address, or a name only a private network resolves."""
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        address = ipaddress.ip_address(host.strip("[]"))
        return address.is_private or address.is_loopback or address.is_link_local
    except ValueError:
        return "." not in host or host == "localhost" or host.endswith(PRIVATE_SUFFIXES)
