"""The plan owns the resource tree: what the program registers is exactly the plan's nodes.

The NameBook's collision and length check walks the plan's nodes (`tree.nodes`), so it proves
something only if the components register those nodes and nothing else, under the names the
nodes carry. These tests run the real program (under the offline harness) for every shipped
stack and for the fingerprint's feature variant (restores, a recreated claim, `backupNow`, a
namespace recovery, a database recovery from one repository), and compare.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from components import names, tree
from components.config import stack_config_of
from components.plan import plan_stack
from tools.fingerprint import FEATURES, shipped_stacks, with_features
from tools.offline import PROJECT_DIR, load_stack_file

from .conftest import program_run

CASES = [(path, False) for path in shipped_stacks()] + [(PROJECT_DIR / "examples" / "Pulumi.nfs-b2-r2.yaml", True)]


def _type_of(urn: str) -> str:
    """The resource's own type token: the last of the URN's type chain."""
    return urn.split("::")[2].split("$")[-1]


@pytest.mark.parametrize(("path", "features"), CASES,
                         ids=[FEATURES if f else p.stem.removeprefix("Pulumi.") for p, f in CASES])
def test_the_program_registers_exactly_the_plans_nodes_under_their_names(path: Path, features: bool):
    config, secret_keys, _ = load_stack_file(path)
    if features:
        config = with_features(config)
    plan = plan_stack(stack_config_of(config))
    run = program_run(config, secret_keys)

    planned = {(n.parent, n.kind.rsplit(":", 1)[-1], n.resource): n for n in tree.nodes(plan) if n.resource}
    registered = {}
    for r in run.registrations:
        if r.type == tree.STACK:
            continue  # the root component, made by __main__.py
        registered[(_type_of(r.parent), r.type.rsplit(":", 1)[-1], r.name)] = r
    assert set(registered) == set(planned), (set(registered) ^ set(planned))

    for key, r in registered.items():
        node = planned[key]
        if "metadata" in r.inputs:  # a Kubernetes object: its name and namespace are the node's
            metadata = r.inputs["metadata"]
            assert (metadata["name"], metadata.get("namespace", "")) == (node.name, node.namespace), key
        else:
            assert not node.name, key


def test_existing_claims_are_named_in_the_plan_but_never_made():
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.migrate-seed000.yaml")
    plan = plan_stack(stack_config_of(config))
    existing = [ap.claim for ap in plan.apps if not ap.managed_claim]
    assert existing and all(node.name and not node.resource for node in existing)
    made = {(r.inputs["metadata"].get("namespace"), r.inputs["metadata"]["name"])
            for r in program_run(config, secret_keys).registrations if r.type == "kubernetes:core/v1:PersistentVolumeClaim"}
    assert not made & {(node.namespace, node.name) for node in existing}


#: Modules that register resources: they read names from the plan, never make one.
COMPONENT_MODULES = sorted(p for p in (PROJECT_DIR / "components").glob("*.py") if "import pulumi\n" in p.read_text())
NAME_FUNCTIONS = {name for name, value in vars(names).items() if callable(value) and not isinstance(value, type)}


def names_derived(source: str) -> list[str]:
    """Calls in `source` of a `names` function, as `names.f(...)` or imported by name, but the
    one selector over every CronJob of a kind (`names.snapshot_check("")`: the prefix)."""
    tree_ = ast.parse(source)
    imported = {alias.asname or alias.name for node in ast.walk(tree_)
                if isinstance(node, ast.ImportFrom) and node.module in ("names", "components.names")
                for alias in node.names if alias.name in NAME_FUNCTIONS}
    found = []
    for node in ast.walk(tree_):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        by_module = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "names"
        if by_module or (isinstance(func, ast.Name) and func.id in imported):
            if not (len(node.args) == 1 and ast.unparse(node.args[0]) == "''"):
                found.append(ast.unparse(node))
    return found


def test_the_component_modules_are_found():
    assert {"app.py", "kopia.py", "postgres.py", "stack.py", "volsync_mover.py"} <= {p.name for p in COMPONENT_MODULES}


@pytest.mark.parametrize("path", COMPONENT_MODULES, ids=lambda p: p.stem)
def test_no_component_derives_a_name(path: Path):
    """A name a component made itself would be one the NameBook never saw."""
    assert names_derived(path.read_text()) == [], f"{path.name} derives names itself"


@pytest.mark.parametrize("source", [
    "from . import names\nx = names.child(a, 'b')\n",
    "from .names import replication_source\nx = replication_source(a, b)\n",
    "from .names import web_ui as ui\nx = ui(a)\n",
])
def test_the_check_sees_a_derived_name(source: str):
    assert names_derived(source)
