"""Kopia run by this program rather than by VolSync: a read-only web UI and a repository mirror.

Both are off by default. The UI (seed 001) is a Kopia server connected read-only, for browsing
snapshots, behind HTTP basic auth (its own username and password, from a Secret), with an
optional TLS Ingress in front. The mirror (seed 002's suspended
Kopia sync jobs) copies a filesystem repository's blobs to an S3 repository with
`kopia repository sync-to`, so the copy is the same repository (same password) off-site.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s
from backup_contract import AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY

from . import labels, tree
from .backends import UI_PASSWORD, UI_PORT, UI_USERNAME, RepositoryAccess
from .config import MoverIdentity, Repository
from .kopiur_mover import replication as kopiur_replication
from .plan import CheckPlan, IngressPlan, MirrorPlan, RepositoryPlan, WebUiPlan
from .secrets import cluster_secret
from .tree import Node
from .volsync import REPOSITORY_MOUNT, MoverVolume

_WORK = "/tmp/kopia"  # config, cache and logs: an emptyDir, the root filesystem stays read-only
KOPIA_ENV = {
    "KOPIA_CONFIG_PATH": f"{_WORK}/repository.config",
    "KOPIA_CACHE_DIRECTORY": f"{_WORK}/cache",
    "KOPIA_LOG_DIR": f"{_WORK}/logs",
    "KOPIA_CHECK_FOR_UPDATES": "false",
}


def connect_command(repository: Repository, identity: str) -> str:
    """`kopia repository connect` for the repository, read-only, as `identity@namespace`.

    A filesystem repository is first checked for being readable by this pod's uid, which is
    every mover's (`defaults.mover.runAsUser`): Kopia writes 0600 files, so a repository an
    older setup wrote as another uid (seed 003's movers run as 1001) fails every mover with
    `permission denied`. Said here with the owner's uid and the key to set, the snapshot check
    and `tools.snapshots` find it before the first backup does.
    """
    common = f"--readonly --override-username={identity} --override-hostname={repository.maintenance.namespace}"
    if repository.is_filesystem:
        return f"{_owner_check()} && kopia repository connect filesystem --path=/mnt/{REPOSITORY_MOUNT} {common}"
    return f"kopia repository connect s3 {s3_flags(repository)} {common}"


#: Kopia's format blob: at the root of every filesystem repository, written by whoever created it.
_REPOSITORY_ROOT = f"/mnt/{REPOSITORY_MOUNT}"
_FORMAT_BLOB = f"{_REPOSITORY_ROOT}/kopia.repository.f"


def _owner_check() -> str:
    """Exits 1 naming the owner's uid when this uid cannot read the repository: its root closed
    to it (a 0700 directory of another uid hides the format blob too), or the format blob
    unreadable. Shell built-ins and `ls`: the Kopia image is Ubuntu, but the check needs no more."""
    root, blob = shlex.quote(_REPOSITORY_ROOT), shlex.quote(_FORMAT_BLOB)
    fix = "set backups:defaults.mover.runAsUser to that uid (every mover and the maintenance run as it)"
    return (
        'owner() { ls -nd "$1" | { read -r _ _ uid _; echo "$uid"; }; }; '
        f'{{ {{ [ -r {root} ] && [ -x {root} ]; }} || {{ echo "uid $(id -u) cannot read the repository: its '
        f'directory belongs to uid $(owner {root}); {fix}" >&2; false; }}; }} && '
        f'{{ [ ! -e {blob} ] || [ -r {blob} ] || {{ echo "uid $(id -u) cannot read the repository: its files '
        f'belong to uid $(owner {blob}); {fix}" >&2; false; }}; }}'
    )


def s3_flags(repository: Repository) -> str:
    """Bucket, endpoint and region flags; the keys come from AWS_* variables of the Secret."""
    s3 = repository.s3
    assert s3 is not None
    flags = [f"--bucket={s3.bucket}", f"--endpoint={s3.host}", f"--region={repository.region}"]
    if not s3.tls:
        flags.append("--disable-tls")
    return " ".join(shlex.quote(f) for f in flags)


@dataclass(frozen=True)
class KopiaPod:
    """What every Kopia pod of this module shares: identity, Secret, repository volume."""

    repository: Repository
    access: RepositoryAccess
    secret_name: str
    identity: MoverIdentity
    image: str
    """`backups:defaults.kopiaImage`: one Kopia version for every pod on the repository."""

    @classmethod
    def of(cls, plan: RepositoryPlan) -> KopiaPod:
        return cls(plan.repository, plan.access, plan.secret_name, plan.identity, plan.kopia_image)

    def volumes(self) -> tuple[list[k8s.core.v1.VolumeArgs], list[k8s.core.v1.VolumeMountArgs]]:
        volumes = [k8s.core.v1.VolumeArgs(name="work", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs())]
        mounts = [k8s.core.v1.VolumeMountArgs(name="work", mount_path=_WORK)]
        for volume in self.access.mover_volumes:
            volumes.append(_pod_volume(volume))
            mounts.append(
                k8s.core.v1.VolumeMountArgs(name="repository", mount_path=f"/mnt/{volume.mount_path}", read_only=True)
            )
        return volumes, mounts

    def security(self) -> k8s.core.v1.PodSecurityContextArgs:
        return k8s.core.v1.PodSecurityContextArgs(
            run_as_user=self.identity.run_as_user,
            run_as_group=self.identity.run_as_group,
            fs_group=self.identity.fs_group,
            run_as_non_root=self.identity.run_as_user != 0,
        )

    def container(
        self, name: str, script: str, extra_env: Optional[list[k8s.core.v1.EnvVarArgs]] = None,
        **kwargs: Any,
    ) -> k8s.core.v1.ContainerArgs:
        _, mounts = self.volumes()
        return k8s.core.v1.ContainerArgs(
            name=name,
            image=self.image,
            command=["/bin/sh", "-c", script],
            env=[k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in KOPIA_ENV.items()] + (extra_env or []),
            env_from=[k8s.core.v1.EnvFromSourceArgs(secret_ref=k8s.core.v1.SecretEnvSourceArgs(name=self.secret_name))],
            volume_mounts=mounts,
            security_context=k8s.core.v1.SecurityContextArgs(
                allow_privilege_escalation=False,
                read_only_root_filesystem=True,
                capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
            ),
            **kwargs,
        )


def _pod_volume(volume: MoverVolume) -> k8s.core.v1.VolumeArgs:
    source = volume.volume_source
    if source.nfs is not None:
        return k8s.core.v1.VolumeArgs(
            name="repository",
            nfs=k8s.core.v1.NFSVolumeSourceArgs(server=source.nfs.server, path=source.nfs.path, read_only=True),
        )
    assert source.persistent_volume_claim is not None
    return k8s.core.v1.VolumeArgs(
        name="repository",
        persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
            claim_name=source.persistent_volume_claim.claim_name, read_only=True
        ),
    )


def _from_secret(secret: str, keys: tuple[str, ...]) -> list[k8s.core.v1.EnvVarArgs]:
    return [
        k8s.core.v1.EnvVarArgs(
            name=key,
            value_from=k8s.core.v1.EnvVarSourceArgs(secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret, key=key)),
        )
        for key in keys
    ]


@dataclass(frozen=True)
class KopiaWebUiArgs:
    pod: KopiaPod
    """The repository served (read-only connection, its Secret and volume)."""
    plan: WebUiPlan
    """The login and the objects, named."""


class KopiaWebUi(pulumi.ComponentResource):
    """A read-only Kopia server for one repository behind a login, with a ClusterIP Service on
    port 80 and, if configured, a TLS Ingress (with Kopiur: the login and the Ingress in front of
    the server Kopiur runs)."""

    deployment: Optional[k8s.apps.v1.Deployment]
    """None with Kopiur, which runs the server itself (the ClusterRepository's `server`)."""
    service: Optional[k8s.core.v1.Service]
    service_name: pulumi.Output[str]

    def __init__(self, name: str, args: KopiaWebUiArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(tree.WEB_UI, name, None, opts)
        pod, plan = args.pod, args.plan
        repo = pod.repository
        login = self._login(plan, repo.name)
        if not plan.service.resource:  # Kopiur's Deployment and Service, from the login
            if plan.ingress is not None:
                self._ingress(plan.ingress, plan.instance, repo.name, plan.service.name, login)
            self.deployment = self.service = None
            self.service_name = login.urn.apply(lambda _: plan.service.name)
            self.register_outputs({"serviceName": self.service_name})
            return
        deployment = self._deployment(plan, pod, login)
        service = k8s.core.v1.Service(
            plan.service.resource,
            metadata=self._metadata(plan.service, plan.instance, repo.name),
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=labels.web_ui_selector(plan.instance),
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port="http")],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        if plan.ingress is not None:
            self._ingress(plan.ingress, plan.instance, repo.name, plan.service.name, service)
        self.deployment, self.service = deployment, service
        # The name is known; taking it through the Service makes it resolve once the Service exists.
        self.service_name = service.urn.apply(lambda _: plan.service.name)
        self.register_outputs({"serviceName": self.service_name})

    @staticmethod
    def _metadata(node: Node, instance: str, repository: str) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(name=node.name, namespace=node.namespace,
                                          labels={**labels.repository(repository), **labels.web_ui_selector(instance)})

    def _login(self, plan: WebUiPlan, repository: str) -> pulumi.Resource:
        """The server's login: its username in the clear, its password from config or a store."""
        login = plan.login
        return cluster_secret(login.node, {**login.node.metadata, "labels": labels.repository(repository)},
                              login.values, parent=self)

    def _deployment(self, plan: WebUiPlan, pod: KopiaPod, login: pulumi.Resource) -> k8s.apps.v1.Deployment:
        """One Kopia server connected read-only; it starts only once its login exists."""
        node = plan.deployment
        selector = labels.web_ui_selector(plan.instance)
        # --insecure: plain HTTP inside the cluster (TLS at the Ingress); the login comes from
        # KOPIA_SERVER_USERNAME/KOPIA_SERVER_PASSWORD, so the server refuses to start without one.
        script = f"{connect_command(pod.repository, 'kopia-ui')} && exec kopia server start --insecure --address=0.0.0.0:{UI_PORT}"
        volumes, _ = pod.volumes()
        return k8s.apps.v1.Deployment(
            node.resource,
            metadata=self._metadata(node, plan.instance, pod.repository.name),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=selector),
                    spec=k8s.core.v1.PodSpecArgs(
                        security_context=pod.security(),
                        volumes=volumes,
                        containers=[
                            pod.container(
                                "kopia-ui",
                                script,
                                extra_env=_from_secret(plan.login.node.name, (UI_USERNAME, UI_PASSWORD)),
                                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=UI_PORT)],
                                readiness_probe=k8s.core.v1.ProbeArgs(
                                    tcp_socket=k8s.core.v1.TCPSocketActionArgs(port="http"), period_seconds=10
                                ),
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": "10m", "memory": "256Mi"}, limits={"memory": "1Gi"}
                                ),
                            )
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[login]),
        )

    def _ingress(self, plan: IngressPlan, instance: str, repository: str, service_name: str,
                 after: pulumi.Resource) -> None:
        node, ingress = plan.node, plan.settings
        backend = k8s.networking.v1.IngressBackendArgs(
            service=k8s.networking.v1.IngressServiceBackendArgs(
                name=service_name, port=k8s.networking.v1.ServiceBackendPortArgs(name="http")
            )
        )
        k8s.networking.v1.Ingress(
            node.resource,
            metadata=self._metadata(node, instance, repository),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name=ingress.class_name,
                tls=[k8s.networking.v1.IngressTLSArgs(hosts=[ingress.host], secret_name=ingress.tls_secret)],
                rules=[k8s.networking.v1.IngressRuleArgs(
                    host=ingress.host,
                    http=k8s.networking.v1.HTTPIngressRuleValueArgs(paths=[k8s.networking.v1.HTTPIngressPathArgs(
                        path="/", path_type="Prefix", backend=backend,
                    )]),
                )],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[after]),
        )


@dataclass(frozen=True)
class RepositoryMirrorArgs:
    source: KopiaPod
    """The filesystem repository copied from (its Secret supplies the password)."""
    plan: MirrorPlan
    """The S3 copy, its Secret in the same namespace (the keys come from there), the schedule."""


class RepositoryMirror(pulumi.ComponentResource):
    """A CronJob copying a filesystem repository to an S3 repository, suspended by default
    (with Kopiur, its RepositoryReplication instead)."""

    cronjob: Optional[k8s.batch.v1.CronJob]

    def __init__(self, name: str, args: RepositoryMirrorArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(tree.MIRROR, name, None, opts)
        source, plan = args.source.repository, args.plan
        target = plan.target
        if plan.runner.kind == "RepositoryReplication":  # Kopiur runs the same sync-to itself
            self.cronjob = None
            kopiur_replication(self, plan, source.name, args.source.identity)
            self.register_outputs({})
            return
        # --delete keeps the copy exact, which is why no mover may write to the target.
        script = (
            f"{connect_command(source, 'kopia-mirror')} && exec kopia repository sync-to s3 "
            f"{s3_flags(target)} --delete --no-progress"
        )
        keys = _from_secret(plan.target_secret, (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY))
        self.cronjob = _kopia_cronjob(
            plan.runner, args.source, plan.schedule, args.source.container("kopia-mirror", script, extra_env=keys),
            parent=self, suspend=plan.suspend,
        )
        self.register_outputs({})


@dataclass(frozen=True)
class SnapshotCheckArgs:
    pod: KopiaPod
    """The repository checked (read-only connection, its Secret and volume)."""
    plan: CheckPlan
    """Every identity the config expects snapshots for in this repository, the schedule, names."""


def check_script(repository: Repository, identities: tuple[str, ...]) -> str:
    """Connect read-only, then fail naming every expected identity that has no snapshot."""
    listed = " ".join(shlex.quote(identity) for identity in identities)
    # `|| exit 1`, not `&&`: the loop after it must never run, and succeed, without a connection.
    return (
        f"{connect_command(repository, 'kopia-check')} || exit 1; missing=''; "
        f"for id in {listed}; do "
        'kopia snapshot list "$id" --json 2>/dev/null | grep -q \'"id"\' || missing="$missing $id"; done; '
        'if [ -n "$missing" ]; then echo "no snapshot for:$missing" >&2; exit 1; fi; '
        f"echo 'every expected identity has a snapshot ({len(identities)})'"
    )


class SnapshotCheck(pulumi.ComponentResource):
    """A CronJob that fails when an identity the config expects has no snapshot in the repository.

    A restore that finds no snapshot succeeds with an empty volume (the mover exits 0), and the
    controller exports nothing that says so. This check makes the condition visible before a
    restore needs it: a failed Job, which kube-state-metrics exports and `KopiaSnapshotsMissing`
    reads. It covers every app's own identity (bootstrap, drills, `previous`, `restoreAsOf`) and
    the identities `restore.from` reads.
    """

    cronjob: k8s.batch.v1.CronJob

    def __init__(self, name: str, args: SnapshotCheckArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(tree.CHECK, name, None, opts)
        plan = args.plan
        self.cronjob = _kopia_cronjob(
            plan.cronjob, args.pod, plan.schedule,
            args.pod.container("kopia-check", check_script(args.pod.repository, plan.identities)), parent=self,
        )
        self.register_outputs({})


def _kopia_cronjob(node: Node, pod: KopiaPod, schedule: str, container: k8s.core.v1.ContainerArgs,
                   parent: pulumi.Resource, suspend: bool = False) -> k8s.batch.v1.CronJob:
    """A CronJob of one Kopia container in the repository's maintenance namespace, one run at a time."""
    volumes, _ = pod.volumes()
    return k8s.batch.v1.CronJob(
        node.resource,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=node.name, namespace=node.namespace,
                                            labels=labels.repository(pod.repository.name)),
        spec=k8s.batch.v1.CronJobSpecArgs(
            schedule=schedule,
            suspend=suspend,
            concurrency_policy="Forbid",
            job_template=k8s.batch.v1.JobTemplateSpecArgs(
                spec=k8s.batch.v1.JobSpecArgs(
                    backoff_limit=1,
                    template=k8s.core.v1.PodTemplateSpecArgs(
                        spec=k8s.core.v1.PodSpecArgs(
                            restart_policy="OnFailure",
                            security_context=pod.security(),
                            volumes=volumes,
                            containers=[container],
                        )
                    ),
                )
            ),
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
