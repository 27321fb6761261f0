"""A Secret the cluster needs, held either by Pulumi or by an external secret manager.

Repository Secrets (kopia.py) and pgBackRest credentials (postgres.py) are built the same way:
values from config become a Secret whose data is a Pulumi secret; values kept in an external
store become an external-secrets.io ExternalSecret that writes the same Secret, with the
non-secret values added by its template, so no secret value passes through Pulumi.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from . import external_secrets as es
from .secret_values import SecretValues
from .tree import Node


def cluster_secret(
    node: Node,
    metadata: k8s.meta.v1.ObjectMetaArgsDict,
    values: SecretValues,
    parent: pulumi.Resource,
) -> pulumi.Resource:
    """The Secret `node` names, as the plan decided: a Secret holding the values from config, or
    an ExternalSecret writing it from a store (each value read from the field named like its key
    unless the ref says otherwise). Config validation guarantees one of the two, and one store."""
    plain, secret, external = values.plain, values.secret, values.external
    assert (node.kind == "ExternalSecret") == bool(external) and not (secret and external), node
    if external:
        ((store, kind),) = {(ref.store, ref.store_kind) for ref in external.values()}
        spec = es.ExternalSecretSpec(
            secret_store_ref=es.StoreRef(name=store, kind=kind),
            target=es.Target(name=metadata["name"], template=es.Template(data=dict(plain))),
            data=tuple(
                es.DataItem(secret_key=key, remote_ref=es.RemoteRef(key=ref.key, property=ref.property or key))
                for key, ref in sorted(external.items())
            ),
        )
        written: pulumi.Resource = k8s.apiextensions.CustomResource(
            node.resource,
            api_version=es.API_VERSION,
            kind="ExternalSecret",
            metadata=metadata,
            spec=spec.to_wire(),
            opts=pulumi.ResourceOptions(parent=parent),
        )
        return written
    revealed = {key: value.get_secret_value() for key, value in secret.items()}
    made: pulumi.Resource = k8s.core.v1.Secret(
        node.resource,
        metadata=metadata,
        type="Opaque",
        # Every value is a Pulumi secret, including the non-secret ones beside them: the SDK
        # would mark the whole map secret anyway, and this says so.
        string_data=pulumi.Output.secret({**plain, **revealed}),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return made
