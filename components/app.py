"""BackupEnabledApp: an app's PVC that restores itself, and its backups to every destination.

The PVC is populated from the mover's bootstrap object (`dataSourceRef`), so after a cluster
rebuild it comes back with the latest snapshot instead of empty; on the very first deploy the
repository has nothing for the app and the volume starts empty. The mover's objects (for
VolSync, `volsync_mover.py`: a ReplicationSource per repository, the bootstrap, restore and drill
ReplicationDestinations) all name the app's Kopia identity (`<app>@<namespace>` unless
`identity` says otherwise), so the history is the app's, not a source object's. An
`existingClaim` is backed up and restored into, never made here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from . import labels, tree
from .kopiur_mover import KopiurMover
from .outputs import known
from .plan import AppPlan
from .tree import Node
from .volsync_mover import VolsyncMover


@dataclass(frozen=True)
class BackupEnabledAppArgs:
    plan: AppPlan
    """Everything decided about the app: volume, backups, restores, readers, names (plan.plan_stack)."""


def inventory_entry(ap: AppPlan) -> dict[str, Any]:
    """What the stack reports for the app: claim, bootstrap repository, and per repository the
    source, its concrete schedule and the Kopia identity its snapshots carry."""
    return {
        "claim": ap.volume.claim_name,
        "claimManaged": ap.managed_claim,
        "bootstrapFrom": ap.first_fill.repository if ap.first_fill else None,
        "identity": ap.app.history,
        "repositories": {
            s.repository: {"source": s.name, "schedule": s.schedule, "identity": f"{s.username}@{s.hostname}"}
            for s in ap.sources
        },
    }


class BackupEnabledApp(pulumi.ComponentResource):
    claim: Optional[pulumi.Resource]
    """The PVC, when the program makes it (not for an `existingClaim`)."""
    claim_name: pulumi.Output[str]
    """The PVC the app mounts."""
    sources: pulumi.Output[dict[str, Any]]
    """repository -> {source, schedule, identity}."""

    def __init__(
        self, name: str, args: BackupEnabledAppArgs, opts: Optional[pulumi.ResourceOptions] = None
    ) -> None:
        super().__init__(tree.APP, name, None, opts)
        ap = self._plan = args.plan
        mover = (KopiurMover if ap.mover == "kopiur" else VolsyncMover)(self, ap)
        self.claim = self._claim(*mover.bootstrap(), mover.data_source_group) if ap.managed_claim else None
        after_claim = [self.claim] if self.claim is not None else []
        mover.backups(after_claim)
        mover.restores(after_claim)

        self.claim_name = pulumi.Output.from_input(ap.claim.name)
        self.sources = known(inventory_entry(ap)["repositories"])
        self.register_outputs({"claimName": self.claim_name, "sources": self.sources})

    def _claim(self, destination: pulumi.Resource, source: Node, group: str) -> pulumi.Resource:
        """The claim, filled by the mover's bootstrap object `source` (of API group `group`) when it is made."""
        ap = self._plan
        app, volume = ap.app, ap.volume

        # The data lives here: never deleted by Pulumi, even when the app leaves the config.
        metadata: k8s.meta.v1.ObjectMetaArgsDict = {
            "name": ap.claim.name,
            "namespace": ap.claim.namespace,
            "labels": labels.backed_up_volume(app.name),
            # A populated claim stays Pending for the whole restore (or, with a
            # WaitForFirstConsumer class, until the app's pod exists): longer than
            # pulumi-kubernetes' 5-minute wait for Bound. Not waiting lets one `pulumi up`
            # create the sources too, on a first deploy and on a rebuild.
            "annotations": {"pulumi.com/skipAwait": "true"},
        }
        spec: k8s.core.v1.PersistentVolumeClaimSpecArgsDict = {
            "access_modes": list(volume.access_modes),
            "storage_class_name": volume.storage_class,
            "resources": {"requests": {"storage": volume.capacity}},
            "data_source_ref": {
                "api_group": group,
                "kind": source.kind,
                "name": source.name,
            },
        }
        claim: pulumi.Resource = k8s.core.v1.PersistentVolumeClaim(
            ap.claim.resource,
            metadata=metadata,
            spec=spec,
            # A claim's dataSourceRef is immutable and matters only when it is made: a claim the fork's
            # bootstrap filled keeps naming it after the move to Kopiur, instead of a failed update.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=[destination],
                                        ignore_changes=["spec.dataSourceRef"] if ap.mover == "kopiur" else None),
        )
        return claim
