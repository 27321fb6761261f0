"""Advice on a config that works but should change: each warning names its key path.

A warning is for what the program can see and the user cannot: a value that sits in git in
plain text, a setting another setting overrides, a key that another key makes do nothing, an
API version the cluster must be told to serve. Each is said once per key, never per object.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from backup_contract import is_private_host
from pydantic import BaseModel, SecretStr
from pydantic.alias_generators import to_camel

from ..keypath import NAMESPACE, KeyPath, format_path

if TYPE_CHECKING:
    from .stack import StackConfig


def warnings(config: StackConfig) -> tuple[str, ...]:
    return (*_plain_secrets(config), *_cluster_version(config), *_plain_http(config), *_existing_claims(config),
            *_mover_overrides(config), *_no_ops(config))


def plain_secret_paths(config: StackConfig) -> Iterator[KeyPath]:
    """Every secret-bearing value given as plain config, under a key the engine does not hold
    as a secret.

    The engine marks secret a whole top-level key (`backups:repositories`) once any value in it
    is `secure:`, and decrypts it before the program starts: a plain value beside a secure one
    under the same key cannot be told apart, so it is not named.
    """
    for field, info in type(config).model_fields.items():
        key = info.alias or to_camel(field)
        if f"{NAMESPACE}:{key}" not in config._secret_keys:
            yield from _secrets_in(getattr(config, field), (key,))


def _secrets_in(value: Any, path: KeyPath) -> Iterator[KeyPath]:
    if isinstance(value, SecretStr):
        yield path
    elif isinstance(value, BaseModel):
        for field, info in type(value).model_fields.items():
            yield from _secrets_in(getattr(value, field), (*path, info.alias or to_camel(field)))
    elif isinstance(value, tuple):
        for index, item in enumerate(value):
            yield from _secrets_in(item, (*path, index))


def _plain_secrets(config: StackConfig) -> Iterator[str]:
    for path in plain_secret_paths(config):
        shown = format_path(path)
        yield (f"{shown}: a secret in plain config, unencrypted in the stack file. Set it with "
               f"`pulumi config set --secret{' --path' if len(path) > 1 else ''} {shown}` "
               "(or use externalSecret).")


def _cluster_version(config: StackConfig) -> Iterator[str]:
    if config.admission.jitter_seconds and 34 <= config.kubernetes.minor < 36 and config.mover == "volsync":
        yield (f"{NAMESPACE}:kubernetes.version: {config.kubernetes.version} renders the jitter policy as "
               "admissionregistration.k8s.io/v1beta1 MutatingAdmissionPolicy, which the API server serves "
               "only with --feature-gates=MutatingAdmissionPolicy=true and "
               "--runtime-config=admissionregistration.k8s.io/v1beta1=true; without them the apply fails. "
               "Set version to your cluster's (v1 from 1.36), or backups:admission.jitterSeconds: 0.")


def _plain_http(config: StackConfig) -> Iterator[str]:
    """What the pack's advisory `s3-tls-off-only-on-private-networks` says per Secret, once, here."""
    for index, repo in enumerate(config.repositories):
        if repo.s3 is not None and not repo.s3.tls and not is_private_host(repo.s3.host):
            yield (f"{NAMESPACE}:repositories[{index}].s3.endpoint: plain HTTP towards {repo.s3.host!r}, which is "
                   "not a private address: the S3 keys cross the network in the clear; use https://")


def _existing_claims(config: StackConfig) -> Iterator[str]:
    for index, app in enumerate(config.apps):
        if app.existing_claim:
            yield (f"{NAMESPACE}:apps[{index}].existingClaim: {app.existing_claim} is made elsewhere, so no "
                   "bootstrap restore fills it: after a rebuild it comes back empty until you set "
                   "restore: {previous: 0} (with the app scaled to zero). To have it fill itself, move it "
                   "to a managed claim (README: Migrating, step 7).")


def _mover_overrides(config: StackConfig) -> Iterator[str]:
    """An app's uid is not what its movers to a filesystem repository run as (plan.mover_identity):
    every file of such a repository belongs to one uid, the maintenance Job's."""
    owner = config.defaults.mover.run_as_user
    for index, app in enumerate(config.apps):
        if app.run_as_user is None or app.run_as_user == owner:
            continue
        shared = [r.name for r in config.repositories_of(app) if r.is_filesystem]
        if shared:
            yield (f"{NAMESPACE}:apps[{index}].runAsUser: {app.run_as_user} is not used by its movers to "
                   f"{', '.join(shared)}: they run as backups:defaults.mover.runAsUser ({owner}), the owner of "
                   "every file in a filesystem repository, and read the app's files through its group "
                   "(runAsGroup, fsGroup). Make the app's files group-readable, or set "
                   "defaults.mover.runAsUser to the repository's owner.")


def _no_ops(config: StackConfig) -> Iterator[str]:
    """Keys given that another key makes do nothing: said, so nobody waits for them."""
    for index, recovery in enumerate(config.recoveries):
        for j, app in enumerate(config.apps):
            if app.namespace == recovery.namespace and app.existing_claim:
                yield (f"{NAMESPACE}:recoveries[{index}]: does not restore {NAMESPACE}:apps[{j}] ({app.name}), "
                       "whose existingClaim no bootstrap restore fills; use its restore key")
    for index, repo in enumerate(config.repositories):
        if repo.mirror_to is None and repo.mirror.model_fields_set:
            yield f"{NAMESPACE}:repositories[{index}].mirror: does nothing without mirrorTo"
        given = repo.ui.model_fields_set - {"enabled"}
        if not repo.ui.enabled and given:
            yield (f"{NAMESPACE}:repositories[{index}].ui: {', '.join(sorted(to_camel(k) for k in given))} "
                   "set, but the web UI is off (ui.enabled: false)")
