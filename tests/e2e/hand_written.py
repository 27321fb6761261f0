"""`python -m tools.engine` with objects written by hand beside the program's, as the seeds made
them, so that the real policy gate meets the seeds' own failures:

    python -m tests.e2e.hand_written {split-password|per-app-prefix} VERB [tools.engine flags]

The program cannot produce these (one password per repository, every app at the bucket root,
by construction); a cluster's other manifests can. Each object is parented to the program's
stack component, so it renders through the stack's own provider.
"""

from __future__ import annotations

import sys
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from tools.engine.__main__ import main

ENDPOINT = "192.168.1.58:3900"


def _secret(names: dict[str, Any], name: str, namespace: str, data: dict[str, str]) -> None:
    k8s.core.v1.Secret(
        f"hand-written-{namespace}-{name}",
        metadata={"name": name, "namespace": namespace},
        string_data=data,
        opts=pulumi.ResourceOptions(parent=names["stack"]),
    )


def split_password(names: dict[str, Any]) -> None:
    """Seed 000, first attempt: a password per app (`${APP}-volsync-backup-password`) for the
    bucket every app shares."""
    _secret(names, "radarr-volsync-secret", "media", {
        "KOPIA_PASSWORD": "radarr-volsync-backup-password", "KOPIA_REPOSITORY": "s3://volsync-backups/",
        "KOPIA_S3_ENDPOINT": ENDPOINT, "KOPIA_S3_DISABLE_TLS": "true",
    })


def per_app_prefix(names: dict[str, Any]) -> None:
    """Seed 000, second attempt: a per-app prefix embedded in the repository URL."""
    _secret(names, "prowlarr-volsync-secret", "media", {
        "KOPIA_PASSWORD": "shared", "KOPIA_REPOSITORY": "s3://volsync-backups/prowlarr/",
        "KOPIA_S3_ENDPOINT": ENDPOINT, "KOPIA_S3_DISABLE_TLS": "true",
    })


EXTRAS = {"split-password": split_password, "per-app-prefix": per_app_prefix}

if __name__ == "__main__":
    sys.exit(main(sys.argv[2:], extra=EXTRAS[sys.argv[1]]))
