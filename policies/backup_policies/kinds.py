"""Recognising Kubernetes objects in policy arguments by their Pulumi type token.

pulumi-kubernetes tokens look like `kubernetes:<group>/<version>:<Kind>` (`core` for the core
group), so the kind and group are read from the token, whatever class registered the object.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from backup_contract import (
    EXTERNAL_SECRETS_GROUP,
    KOPIA_PASSWORD,
    KOPIA_REPOSITORY,
    KOPIA_S3_ENDPOINT,
    KOPIUR_GROUP,
    TARGET_ANNOTATION,
    normalized_target,
)


def kind_of(resource_type: str) -> tuple[str, str]:
    """(group, kind) of a pulumi-kubernetes type token; ("", "") for anything else."""
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes":
        return "", ""
    group = parts[1].rsplit("/", 1)[0]
    return ("" if group == "core" else group), parts[2]


def is_kind(resource_type: str, group: str, kind: str) -> bool:
    return kind_of(resource_type) == (group, kind)


def metadata(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return props.get("metadata") or {}


def object_name(props: Mapping[str, Any]) -> str:
    meta = metadata(props)
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"


def secret_values(props: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's values as text, from stringData or base64 data (stringData wins, as in k8s)."""
    values: dict[str, str] = {}
    for key, value in (props.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(value).decode()
        except (ValueError, TypeError):
            continue
    values.update({k: v for k, v in (props.get("stringData") or {}).items() if isinstance(v, str)})
    return values


def repository_variables(resource_type: str, props: Mapping[str, Any]) -> Optional[dict[str, str]]:
    """The mover variables a Kopia repository Secret or ExternalSecret provides, or None when the
    object is neither (a Secret without KOPIA_REPOSITORY, which the fork's mover needs)."""
    values = provided_values(resource_type, props)
    return values if values is not None and KOPIA_REPOSITORY in values else None


def provided_values(resource_type: str, props: Mapping[str, Any]) -> Optional[dict[str, str]]:
    """The keys a Secret, or the Secret an ExternalSecret writes, holds; None for anything else.
    For an ExternalSecret only the template's (non-secret) values are known; its fetched keys
    appear as `<from store/key#property>` so they can be compared, never read."""
    if is_kind(resource_type, "", "Secret"):
        values = secret_values(props)
    elif is_kind(resource_type, EXTERNAL_SECRETS_GROUP, "ExternalSecret"):
        spec = props.get("spec") or {}
        values = dict((((spec.get("target") or {}).get("template") or {}).get("data")) or {})
        store = (spec.get("secretStoreRef") or {}).get("name", "?")
        for item in spec.get("data") or []:
            ref = item.get("remoteRef") or {}
            values[item.get("secretKey", "?")] = f"<from {store}/{ref.get('key')}#{ref.get('property', '')}>"
    else:
        return None
    return values


def kopia_repository_target(props: Mapping[str, Any], values: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """What repository a Kopia repository Secret points at, or None if it is no such Secret.

    A filesystem URL is the mover's mount point, the same for every filesystem repository, so
    the program records the real target in an annotation; S3 URLs are qualified by endpoint.
    """
    values = secret_values(props) if values is None else values
    url = values.get(KOPIA_REPOSITORY)
    if url is None:
        return None
    annotated = (metadata(props).get("annotations") or {}).get(TARGET_ANNOTATION)
    if isinstance(annotated, str) and annotated:
        return normalized_target(annotated)
    endpoint = values.get(KOPIA_S3_ENDPOINT)
    return normalized_target(f"s3://{endpoint}/{url.removeprefix('s3://')}" if endpoint else url)


def listed(names: Sequence[str], most: int = 6) -> str:
    """`a, b, c and 4 more`: the objects one violation stands for, on one readable line."""
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


#: Kopiur's repository kinds: a namespaced Repository and the cluster-wide ClusterRepository, and
#: the RepositoryReplication whose `destination` is a backend too (a copy, with the source's password).
KOPIUR_REPOSITORY_KINDS = ("Repository", "ClusterRepository", "RepositoryReplication")
#: Where a ClusterRepository reads a Secret reference without a namespace: the operator's own
#: namespace, which the stack does not say.
OPERATOR_NAMESPACE = "<kopiur's namespace>"


@dataclass(frozen=True)
class KopiurRepository:
    """What the pack reads from a Kopiur Repository or ClusterRepository."""

    name: str
    target: Optional[str]
    """Normalised like the fork's targets (`s3://<endpoint>/<bucket>[/<prefix>]`, `nfs://<server>/<path>`);
    None for a PVC-backed filesystem, whose place the pack cannot see."""
    password: Optional[tuple[str, str, str]]
    """(namespace, name, key) of the password Secret; None for a replication's copy (its source's)."""
    s3_endpoint: Optional[str] = None
    s3_prefix: str = ""
    tls_disabled: bool = False


def kopiur_repository(resource_type: str, props: Mapping[str, Any]) -> Optional[KopiurRepository]:
    kind = next((k for k in KOPIUR_REPOSITORY_KINDS if is_kind(resource_type, KOPIUR_GROUP, k)), None)
    if kind is None:
        return None
    spec = props.get("spec") or {}
    namespaced = kind != "ClusterRepository"
    backend = spec.get("destination" if kind == "RepositoryReplication" else "backend") or {}
    home = metadata(props).get("namespace", "default") if namespaced else OPERATOR_NAMESPACE
    ref = (spec.get("encryption") or {}).get("passwordSecretRef") or {}
    password = None if kind == "RepositoryReplication" else (
        ref.get("namespace") or home, ref.get("name", "?"), ref.get("key") or KOPIA_PASSWORD)
    name = f"{kind} {object_name(props) if namespaced else metadata(props).get('name', '?')}"
    if "s3" in backend:
        s3 = backend["s3"] or {}
        endpoint = s3.get("endpoint") or "s3.amazonaws.com"
        prefix = s3.get("prefix") or ""
        return KopiurRepository(name, normalized_target(f"s3://{endpoint}/{s3.get('bucket', '?')}/{prefix}"),
                                password, endpoint, prefix, bool((s3.get("tls") or {}).get("disableTls")))
    nfs = (((backend.get("filesystem") or {}).get("volume")) or {}).get("nfs")
    place = normalized_target(f"nfs://{nfs.get('server', '?')}/{nfs.get('path', '')}") if nfs else None
    return KopiurRepository(name, place, password)
