"""The program-to-pack contract has one source, `policies/backup_contract.py`.

The pack recognises what the program makes by label keys, API groups and the mover's variable
names; if either side spelt one of them itself, the two could drift apart and a guardrail would
silently stop seeing the program's objects. So no module of the program or the pack may write a
contract value as a string literal: each must import it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import backup_contract
import pytest

from components import kopiur
from components.config import Retention
from components.volsync import Retain
from tools.offline import PROJECT_DIR


def _contract_values() -> dict[str, str]:
    """value -> the contract's name for it: every string constant, every string in a tuple
    constant, and the label keys of MANAGED_BY (its value is only a label value)."""
    found: dict[str, str] = {}
    for name, value in vars(backup_contract).items():
        if name.startswith("_") or name in ("RETAIN_KEYS", "KOPIUR_RETENTION_KEYS"):  # field names: checked below
            continue
        if isinstance(value, str):
            found[value] = name
        elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            found.update({v: name for v in value})
        elif isinstance(value, dict):
            found.update({k: name for k in value})
    return found


CONTRACT = _contract_values()
GROUPS = (backup_contract.VOLSYNC_GROUP, backup_contract.EXTERNAL_SECRETS_GROUP)
SOURCES = sorted(
    path for folder in ("components", "policies", "tools")
    for path in (PROJECT_DIR / folder).rglob("*.py")
    if path.name != "backup_contract.py" and "node_modules" not in path.parts
) + [PROJECT_DIR / "__main__.py"]


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the Constant nodes that are docstrings (module, class, function, attribute)."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            for statement in body:
                if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                    found.add(id(statement.value))
    return found


def spelt_contract_values(source: str) -> list[str]:
    """The contract values written as string literals in `source` (docstrings aside): a value
    itself, or an API group with something after it anywhere in a text (`volsync.backube/v1alpha1`,
    a label selector `-l volsync.backube/...` in a runbook)."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    spelt = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
            if text in CONTRACT or any(group + "/" in text for group in GROUPS):
                spelt.append(text)
    return spelt


def test_the_contract_has_what_both_sides_need():
    assert {"backups.homelab.dev/repository", "volsync.backube", "external-secrets.io", "KOPIA_REPOSITORY",
            "KOPIA_PASSWORD", "ceph-filesystem"} <= set(CONTRACT)
    assert len(SOURCES) > 40


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PROJECT_DIR)))
def test_no_module_spells_a_contract_value_itself(path: Path):
    assert spelt_contract_values(path.read_text()) == [], f"import these from backup_contract in {path.name}"


@pytest.mark.parametrize("line", [
    'URL = "KOPIA_REPOSITORY"',
    'API = "volsync.backube/v1alpha1"',
    'RUNBOOK = "kubectl get jobs -l volsync.backube/kopia-maintenance=true"',
    'labels = {"backups.homelab.dev/app": name}',
    'def f():\n    return values.get("KOPIA_S3_ENDPOINT")',
])
def test_the_check_sees_a_spelt_value(line: str):
    """The scan itself: each of these would be a second spelling."""
    assert spelt_contract_values(line)


def test_the_retain_keys_are_the_configs_and_the_specs():
    """The pack wants every key the program writes, and the program writes every key there is."""
    assert tuple(Retention.model_fields) == backup_contract.RETAIN_KEYS
    assert tuple(Retain.model_fields) == backup_contract.RETAIN_KEYS
    # Kopiur's, as its SnapshotPolicy spells them (the wire names of the typed spec's fields).
    wire = kopiur.Retention(**dict.fromkeys(kopiur.Retention.model_fields, 0)).to_wire()
    assert tuple(wire) == backup_contract.KOPIUR_RETENTION_KEYS
