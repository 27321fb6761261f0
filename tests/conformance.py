"""Validation of rendered objects against the upstream CRDs and Kubernetes' own schemas."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

#: API groups whose objects are checked against a CRD in ../shared/crds.
CRD_GROUPS = (
    "volsync.backube", "postgresql.cnpg.io", "pgbackrest.dalibo.com",
    "external-secrets.io", "monitoring.coreos.com", "kopiur.home-operations.com",
)


@functools.cache
def crd_schemas(crds_dir: Path) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict openAPIV3Schema, for every served version of every CRD."""
    schemas: dict[tuple[str, str], dict] = {}
    for path in sorted(crds_dir.rglob("*.yaml")):
        for document in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            if not document or document.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = document["spec"]["group"], document["spec"]["names"]["kind"]
            for version in document["spec"]["versions"]:
                if version.get("served", True):
                    root = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                    # The API server always takes these; some generators (Kopiur's) leave them out.
                    for field in ("apiVersion", "kind", "metadata"):
                        root.setdefault("properties", {}).setdefault(field, {"type": "object" if field == "metadata" else "string"})
                    schema = _strict(root)
                    schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def _strict(schema: Any) -> Any:
    """Unknown fields become errors: the API server would prune them, silently losing intent."""
    if isinstance(schema, dict):
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        for value in schema.values():
            _strict(value)
    elif isinstance(schema, list):
        for value in schema:
            _strict(value)
    return schema


def problems(manifest: dict, crds_dir: Path, kubernetes_version: str) -> Iterator[str]:
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    name = f"{kind} {manifest['metadata'].get('namespace', '')}/{manifest['metadata']['name']}"
    if api_version.split("/")[0] in CRD_GROUPS:
        schema = crd_schemas(crds_dir).get((api_version, kind))
        if schema is None:
            yield f"{name}: no served CRD for {api_version} {kind}"
            return
        for error in jsonschema.Draft7Validator(schema).iter_errors(manifest):
            yield f"{name}: {'.'.join(map(str, error.absolute_path))}: {error.message}"
    else:
        try:
            kubernetes_validate.validate(manifest, f"{kubernetes_version}.0", strict=True)
        except kubernetes_validate.ValidationError as error:
            yield f"{name}: {str(error).splitlines()[0]}"
