"""Properties every render must have, judged on the rendered objects alone (not on the plan that
made them): the fuzz test checks them on every mutated stack it renders, and test_examples on
the shipped stacks. Each returns what is wrong, empty when the render is sound.

The judges here are written from what the API server, S3 and the movers accept, not from the
program's own validators, so a validator that lets something through is caught, not echoed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from backup_contract import ONE_OFF_LABEL, REPOSITORY_LABEL, normalized_target, overlaps
from backup_policies.kinds import kopia_repository_target, repository_variables

Manifest = Mapping[str, Any]

#: AWS's bucket naming rules (3-63, lower case, digits, '.', '-', letter or digit at both ends,
#: no '..', not an IPv4 address).
_BUCKET = re.compile(r"(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
#: networking/v1 Ingress rule host: a lower-case DNS-1123 subdomain, maybe `*.`-prefixed.
_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_INGRESS_HOST = re.compile(rf"(\*\.)?{_LABEL}(\.{_LABEL})*")
#: What the mover compares as text with Kopia's times: four-digit year, UTC, `Z`.
_UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
_WORKLOADS = ("CronJob", "Job", "Deployment", "StatefulSet", "DaemonSet", "Pod")


def problems(manifests: list[Manifest], buckets: Iterable[str], output: str, config: Mapping[str, Any]) -> list[str]:
    """Everything wrong with one render: `manifests` as written, `buckets` the Bucket resources'
    names, `output` what the preview printed, `config` the `backups:*` keys it rendered."""
    return [*one_owner_per_place(manifests), *one_writer_per_identity(manifests), *secrets_in_namespace(manifests),
            *derived_values(manifests, buckets), *said_when_a_key_does_nothing(manifests, output, config)]


def _meta(m: Manifest) -> Mapping[str, Any]:
    return m.get("metadata") or {}


def _where(m: Manifest) -> str:
    return f"{m.get('kind')} {_meta(m).get('namespace', '')}/{_meta(m).get('name')}"


def _repository_targets(manifests: list[Manifest]) -> dict[tuple[str, str], tuple[str, str]]:
    """(namespace, Secret name) -> (normalised target, repository label) of each repository Secret."""
    found = {}
    for m in manifests:
        kind = m.get("kind")
        if kind not in ("Secret", "ExternalSecret"):
            continue
        resource_type = "kubernetes:core/v1:Secret" if kind == "Secret" else "kubernetes:external-secrets.io/v1:ExternalSecret"
        values = repository_variables(resource_type, m)
        target = kopia_repository_target(m, values) if values is not None else None
        if target is not None:
            found[(_meta(m).get("namespace", ""), _meta(m)["name"])] = (target, (_meta(m).get("labels") or {}).get(REPOSITORY_LABEL, "?"))
    return found


def one_owner_per_place(manifests: list[Manifest]) -> Iterator[str]:
    """Each Kopia target is one repository; no database archive lies in or over a Kopia
    repository; each database bucket belongs to one database."""
    kopia: dict[str, set[str]] = defaultdict(set)
    for target, repository in _repository_targets(manifests).values():
        kopia[target].add(repository)
    for target, repositories in kopia.items():
        if len(repositories) > 1:
            yield f"one place, two repositories: {target} is {sorted(repositories)}"
    for a in kopia:
        for b in kopia:
            if a < b and overlaps(a, b):
                yield f"one repository inside another: {a} and {b}"
    archives: dict[str, set[str]] = defaultdict(set)
    for m in manifests:
        if m.get("kind") == "Stanza":
            for repo in ((m.get("spec") or {}).get("stanzaConfiguration") or {}).get("s3Repositories") or []:
                archives[normalized_target(f"s3://{repo.get('endpoint')}/{repo.get('bucket')}")].add(_where(m))
    for place, stanzas in archives.items():
        if len(stanzas) > 1:
            yield f"one bucket, two databases: {place} holds {sorted(stanzas)}"
        for target in kopia:
            if overlaps(place, target):
                yield f"a database archive in a Kopia repository: {place} ({sorted(stanzas)})"


def one_writer_per_identity(manifests: list[Manifest]) -> Iterator[str]:
    """No two scheduled sources write one Kopia identity into one physical repository (the
    backupNow source is the same writer on another trigger)."""
    targets = _repository_targets(manifests)
    writers: dict[tuple[str, str], list[str]] = defaultdict(list)
    for m in manifests:
        if m.get("kind") != "ReplicationSource" or ONE_OFF_LABEL in (_meta(m).get("labels") or {}):
            continue
        kopia = (m.get("spec") or {}).get("kopia") or {}
        namespace = _meta(m).get("namespace", "")
        target = targets.get((namespace, kopia.get("repository", "")), ("?",))[0]
        identity = f"{kopia.get('username', _meta(m)['name'])}@{kopia.get('hostname', namespace)}"
        writers[(target, identity)].append(_where(m))
    for (target, identity), sources in writers.items():
        if len(sources) > 1:
            yield f"two writers of {identity} in {target}: {sources}"


def _reads(m: Manifest) -> Iterator[str]:
    """The names of the Secrets an object's pods or movers read (required ones only)."""
    spec = m.get("spec") or {}
    kind = m.get("kind")
    if kind in ("ReplicationSource", "ReplicationDestination", "KopiaMaintenance"):
        # A mover's repository Secret: spec.kopia.repository, or a maintenance's spec.repository.repository.
        holder = spec.get("kopia") if kind != "KopiaMaintenance" else spec.get("repository")
        name = (holder or {}).get("repository")
        if name:
            yield name
    elif kind == "Stanza":
        for repo in (spec.get("stanzaConfiguration") or {}).get("s3Repositories") or []:
            for ref in (repo.get("secretRef") or {}).values():
                yield ref.get("name")
            cipher = (repo.get("cipherConfig") or {}).get("encryptionPass") or {}
            if cipher.get("name"):
                yield cipher["name"]
    elif kind in _WORKLOADS:
        pod = spec
        if kind == "CronJob":
            pod = (pod.get("jobTemplate") or {}).get("spec") or {}
        if kind != "Pod":
            pod = (pod.get("template") or {}).get("spec") or {}
        for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
            for env in container.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    yield ref["name"]
            for source in container.get("envFrom") or []:
                ref = source.get("secretRef")
                if ref and not ref.get("optional"):
                    yield ref["name"]
        for volume in pod.get("volumes") or []:
            ref = volume.get("secret")
            if ref and not ref.get("optional"):
                yield ref["secretName"]


def secrets_in_namespace(manifests: list[Manifest]) -> Iterator[str]:
    """Every Secret a rendered workload or mover reads is rendered in its namespace (a Secret
    or the target of an ExternalSecret): one that is not would never start."""
    present: set[tuple[str, str]] = set()
    for m in manifests:
        namespace = _meta(m).get("namespace", "")
        if m.get("kind") == "Secret":
            present.add((namespace, _meta(m)["name"]))
        elif m.get("kind") == "ExternalSecret":
            present.add((namespace, ((m.get("spec") or {}).get("target") or {}).get("name") or _meta(m)["name"]))
    for m in manifests:
        namespace = _meta(m).get("namespace", "")
        for name in _reads(m):
            if (namespace, name) not in present:
                yield f"{_where(m)} reads Secret {name!r}, which is not rendered in {namespace!r}"


def derived_values(manifests: list[Manifest], buckets: Iterable[str]) -> Iterator[str]:
    """Values judged where the API server, S3 or the mover would judge them."""
    for bucket in buckets:
        if not _BUCKET.fullmatch(bucket):
            yield f"bucket {bucket!r} is not an S3 bucket name"
    for m in manifests:
        spec = m.get("spec") or {}
        if m.get("kind") == "Ingress":
            for rule in spec.get("rules") or []:
                host = rule.get("host", "")
                if len(host) > 253 or not _INGRESS_HOST.fullmatch(host) or re.fullmatch(r"[0-9.]+", host):
                    yield f"{_where(m)}: host {host!r} is not what an Ingress accepts"
        if m.get("kind") == "ReplicationDestination":
            moment = (spec.get("kopia") or {}).get("restoreAsOf")
            if moment is not None and not _UTC_TIME.fullmatch(moment):
                yield f"{_where(m)}: restoreAsOf {moment!r} is not a UTC RFC 3339 time the mover can compare"
        if m.get("kind") == "Stanza":
            for repo in (spec.get("stanzaConfiguration") or {}).get("s3Repositories") or []:
                if not _BUCKET.fullmatch(str(repo.get("bucket", ""))):
                    yield f"{_where(m)}: bucket {repo.get('bucket')!r} is not an S3 bucket name"


def said_when_a_key_does_nothing(manifests: list[Manifest], output: str, config: Mapping[str, Any]) -> Iterator[str]:
    """A recovery of a namespace restores at least one claim the program makes there, or the
    preview says which apps it leaves out; a mirror block without mirrorTo, and UI settings with
    the UI off, are noted."""
    claims = {_meta(m).get("namespace") for m in manifests if m.get("kind") == "PersistentVolumeClaim"}
    for index, recovery in enumerate(config.get("backups:recoveries") or []):
        namespace = recovery.get("namespace") if isinstance(recovery, Mapping) else None
        if namespace not in claims:
            yield f"backups:recoveries[{index}] ({namespace}) restores no claim the program makes, and nothing said so"
        if namespace in claims and any(a.get("existingClaim") for a in config.get("backups:apps") or []
                                       if isinstance(a, Mapping) and a.get("namespace") == namespace) \
                and f"backups:recoveries[{index}]: does not restore" not in output:
            yield f"backups:recoveries[{index}] skips an existingClaim in {namespace}, and nothing said so"
    for index, repo in enumerate(config.get("backups:repositories") or []):
        if isinstance(repo, Mapping) and repo.get("mirror") and not repo.get("mirrorTo") \
                and f"backups:repositories[{index}].mirror: does nothing" not in output:
            yield f"backups:repositories[{index}].mirror is set without mirrorTo, and nothing said so"
        ui = repo.get("ui") if isinstance(repo, Mapping) else None
        if isinstance(ui, Mapping) and not ui.get("enabled") and set(ui) - {"enabled"} \
                and f"backups:repositories[{index}].ui: " not in output:
            yield f"backups:repositories[{index}].ui has settings while the web UI is off, and nothing said so"
