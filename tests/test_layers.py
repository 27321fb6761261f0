"""The layers: config (parsing) -> plan (decisions, plain data) -> components (resources).

Config knows nothing of planning (it is a leaf beside `keypath`), and nothing the plan imports,
however indirectly, imports Pulumi's resource SDKs (or Pulumi at all, but where config meets the
engine): decisions made before any resource exists are unit-tested without mocks. Read from the source, so a new import that breaks a layer fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tools.offline import PROJECT_DIR

COMPONENTS = PROJECT_DIR / "components"
#: The config package's two meetings with the engine, neither of them a resource: ConfigError is a
#: `pulumi.RunError` (the engine prints its message, no traceback), and the running stack's
#: config is read through the SDK.
MEETS_THE_ENGINE = {"config/errors.py", "config/loading.py"}


def local_imports(path: Path) -> tuple[set[str], set[str]]:
    """What importing `path` imports (its module-level imports; one inside a function runs only
    when called): (modules of `components`, as paths relative to components/; other packages)."""
    local, other = set(), set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            package = path.parent.relative_to(COMPONENTS).parts
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            parts = (*base, *(node.module.split(".") if node.module else ()))
            names = [alias.name for alias in node.names] if not node.module else [None]
            for name in names:
                target = (*parts, name) if name else parts
                module = COMPONENTS.joinpath(*target)
                local.add(str(module.relative_to(COMPONENTS)) if module.is_dir() else str(module.relative_to(COMPONENTS)) + ".py")
        elif isinstance(node, ast.ImportFrom):
            other.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Import):
            other.update(alias.name.split(".")[0] for alias in node.names)
    return local, other


def _closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = COMPONENTS / module
        files = sorted(path.glob("*.py")) if path.is_dir() else [path]
        for file in files:
            local, _ = local_imports(file)
            todo.extend(local)
            todo.extend(str(f.relative_to(COMPONENTS)) for f in files if f != file)
    return seen


def test_config_imports_no_planning_module():
    for path in sorted((COMPONENTS / "config").glob("*.py")):
        outside = {m for m in local_imports(path)[0] if not m.startswith("config")}
        assert outside <= {"keypath.py"}, f"config/{path.name} imports {sorted(outside)}"


@pytest.mark.parametrize("module", ["plan.py", "database_plan.py", "volsync_plan.py", "tree.py", "names.py",
                                    "schedule.py", "backends.py", "secret_values.py", "config"])
def test_the_plan_and_everything_it_imports_are_free_of_pulumi(module: str):
    modules = _closure(module)
    assert "plan.py" not in modules or module == "plan.py"  # nothing below the plan imports it back
    for name in modules:
        path = COMPONENTS / name
        for file in sorted(path.glob("*.py")) if path.is_dir() else [path]:
            _, other = local_imports(file)
            allowed = {"pulumi"} if str(file.relative_to(COMPONENTS)) in MEETS_THE_ENGINE else set()
            assert not {o for o in other if o.startswith("pulumi")} - allowed, f"{file.relative_to(COMPONENTS)} imports Pulumi"


def test_the_scan_sees_pulumi_and_local_imports(tmp_path: Path):
    """The scan itself: absolute imports of Pulumi's packages, and relative imports resolved."""
    probe = tmp_path / "probe.py"
    probe.write_text("import pulumi\nfrom pulumi_aws import s3\nimport yaml\n")
    assert local_imports(probe) == (set(), {"pulumi", "pulumi_aws", "yaml"})
    assert {"names.py", "tree.py", "keypath.py"} <= local_imports(COMPONENTS / "volsync_plan.py")[0]
