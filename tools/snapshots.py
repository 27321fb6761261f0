"""Print the one command that lists an app's snapshots in each repository it can restore from.

    python -m tools.snapshots [--stack dev | --config-file FILE] [--app media/radarr] [--secret NAME]

`previous: N` and `restoreAsOf` are chosen from that list: the newest snapshot is `previous: 0`
(the last line Kopia prints), and `restoreAsOf` takes the newest snapshot at or before a time.
Each command is a `kubectl run` of a throw-away Kopia pod in the app's namespace, where the
repository Secret (and a filesystem repository's volume) already are, connected read-only, as
the movers of that repository run; it lists the app's own identity, the one every restore reads.
Nothing is read from the cluster here: the names come from the plan, as the program makes them.

`--secret NAME` makes the pod read another Secret of the app's namespace instead of the
program's `volsync-kopia-<repo>`: before the first `pulumi up` of a migration, the old setup's
repository Secret (it has the same keys, VolSync's), so the old history is checked before
anything changes.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Optional

from components import names
from components.config import ConfigError, stack_config_of
from components.kopia_jobs import KOPIA_ENV, connect_command
from components.plan import AppPlan, StackPlan, plan_stack

from .offline import load_stack_file, stack_file
from .stackfile import StackFileError

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def listing_script(plan: StackPlan, ap: AppPlan, repository: str) -> str:
    """What the pod runs: connect read-only, list the app's history."""
    repo = plan.repository(repository).repository
    user, host = ap.app.kopia_identity
    return f"{connect_command(repo, 'snapshot-list')} && kopia snapshot list --all {shlex.quote(names.identity(user, host))}"


def listing_pod(plan: StackPlan, ap: AppPlan, repository: str, secret: Optional[str] = None) -> dict[str, Any]:
    """The pod spec, as `kubectl run --overrides` takes it."""
    reader = ap.readers[repository]
    mover = reader.mover
    volumes: list[dict[str, Any]] = [{"name": "work", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "work", "mountPath": "/tmp/kopia"}]
    for volume in reader.mover_volumes:
        source = volume.volume_source
        if source.nfs is not None:
            volumes.append({"name": "repository", "nfs": {"server": source.nfs.server, "path": source.nfs.path, "readOnly": True}})
        elif source.persistent_volume_claim is not None:
            claim = source.persistent_volume_claim.claim_name
            volumes.append({"name": "repository", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
        mounts.append({"name": "repository", "mountPath": f"/mnt/{volume.mount_path}", "readOnly": True})
    return {"spec": {
        "restartPolicy": "Never",
        "securityContext": {"runAsUser": mover.run_as_user, "runAsGroup": mover.run_as_group,
                            "fsGroup": mover.fs_group, "runAsNonRoot": mover.run_as_user != 0},
        "volumes": volumes,
        "containers": [{
            "name": "kopia", "image": plan.repository(repository).kopia_image,
            "command": ["/bin/sh", "-c", listing_script(plan, ap, repository)],
            "env": [{"name": k, "value": v} for k, v in KOPIA_ENV.items()],
            "envFrom": [{"secretRef": {"name": secret or reader.secret_name}}],
            "volumeMounts": mounts,
        }],
    }}


def listing_command(plan: StackPlan, ap: AppPlan, repository: str, secret: Optional[str] = None) -> str:
    pod = f"kopia-ls-{ap.app.name}"[:63].rstrip("-")
    overrides = json.dumps(listing_pod(plan, ap, repository, secret), separators=(",", ":"))
    return (f"kubectl -n {ap.app.namespace} run {pod} --rm -i --restart=Never --image={plan.repository(repository).kopia_image} "
            f"--overrides={shlex.quote(overrides)}")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--config-file", type=Path, help="a stack file anywhere (instead of --stack)")
    parser.add_argument("--app", help="namespace/app (default: every app)")
    parser.add_argument("--secret", help="the Secret the pod reads (default: the program's volsync-kopia-<repo>)")
    args = parser.parse_args(argv)
    if args.secret is not None and not _DNS_SUBDOMAIN.fullmatch(args.secret):
        print("error: --secret: not a Secret name (lower-case letters, digits, '-' and '.')", file=sys.stderr)
        return 2
    path = args.config_file or stack_file(args.stack)
    try:
        config, _, _ = load_stack_file(path)
        plan = plan_stack(stack_config_of(config))
    except FileNotFoundError:
        print(f"error: {path.name} not found", file=sys.stderr)
        return 2
    except (ConfigError, StackFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    apps = [ap for ap in plan.apps if args.app in (None, f"{ap.app.namespace}/{ap.app.name}")]
    if not apps:
        print(f"error: no app {args.app!r} in stack {args.stack!r} (give namespace/app)", file=sys.stderr)
        return 2
    for ap in apps:
        for repository in ap.readable:
            print(f"# {ap.app.namespace}/{ap.app.name}: {ap.app.history} in {repository} (newest last = previous: 0)")
            print(listing_command(plan, ap, repository, args.secret))
    return 0


if __name__ == "__main__":
    sys.exit(main())
