"""One digest per shipped stack of everything the program sends the engine, to prove a
refactoring changed nothing.

    python -m tools.fingerprint [--out DIR]

For the dev stack, each stack in `examples/` and `features` (nfs-b2-r2 with what no shipped
stack has, below), the program runs under the offline harness and
every registration is written out, sorted by URN: URN, type, parent, options, dependencies, aliases,
provider, the properties exactly as sent (secret values included: they are placeholders of
the offline loader) and each component's outputs, then the stack outputs. Rendered manifests are
those properties, so equal digests mean equal renders. `--out DIR` also writes each stack's text,
to diff two commits' runs when a digest differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Optional

from google.protobuf import json_format

from .offline import PROJECT_DIR, Registration, load_stack_file, run_program, stack_file


def shipped_stacks() -> list[Path]:
    return [stack_file("dev"), *sorted((PROJECT_DIR / "examples").glob("Pulumi.*.yaml"))]


#: What no shipped stack has, added to `nfs-b2-r2` (JSON per key, as the loader gives it): a
#: restore, a recreated claim, a one-off backup, a namespace recovery and a database recovery
#: from one repository, so their objects are fingerprinted too.
FEATURES = "features"


def with_features(config: dict[str, str]) -> dict[str, str]:
    apps, databases = json.loads(config["backups:apps"]), json.loads(config["backups:databases"])
    apps[0]["restore"] = {"previous": 1}
    apps[1]["recreateClaim"] = "grow-1"
    apps[2]["backupNow"] = 1
    apps[3]["restore"] = {"repository": "b2-mirror", "restoreAsOf": "2026-01-14T12:00:00Z"}
    databases[1]["recovery"] = {"repository": "r2", "restoreAsOf": "2026-01-14T12:00:00Z"}
    recoveries = [{"namespace": "media", "repository": "b2-mirror", "previous": 0}]
    return {**config, "backups:apps": json.dumps(apps), "backups:databases": json.dumps(databases),
            "backups:recoveries": json.dumps(recoveries)}


def _options(registration: Registration) -> dict[str, object]:
    """Every field of the request but its properties, so an option sent as `false` differs from
    one left unset; lists whose order the SDK does not fix are sorted."""
    if registration.request is None:
        return {}
    sent = json_format.MessageToDict(registration.request)
    for key in ("object", "sourcePosition", "stackTrace"):  # the properties; where in our source it was made
        sent.pop(key, None)
    for key in ("dependencies", "aliasURNs"):
        if key in sent:
            sent[key] = sorted(sent[key])
    for deps in (sent.get("propertyDependencies") or {}).values():
        deps["urns"] = sorted(deps.get("urns", []))
    return sent


def _entry(registration: Registration) -> dict[str, object]:
    return {
        "request": _options(registration),
        "urn": registration.urn, "type": registration.type, "parent": registration.parent,
        "custom": registration.custom, "protect": registration.protect,
        "retainOnDelete": registration.retain_on_delete, "dependencies": sorted(registration.dependencies),
        "provider": registration.provider, "version": registration.version,
        "aliases": registration.aliases, "properties": json_format.MessageToDict(registration.wire),
        "outputs": json_format.MessageToDict(registration.outputs) if registration.outputs is not None else None,
    }


def stack_text(path: Path, features: bool = False) -> str:
    """Everything one stack's program run sends the engine, as stable JSON lines."""
    config, secret_keys, _ = load_stack_file(path)
    run = run_program(with_features(config) if features else config, secret_keys, stack=path.stem.removeprefix("Pulumi."))
    assert run.stack is not None
    # By URN: the SDK registers resources from concurrent tasks, so their order (and the order
    # of a resource's dependencies, a set) varies from run to run; their content does not.
    return "".join(sorted(json.dumps(_entry(r), sort_keys=True) + "\n" for r in [*run.registrations, run.stack]))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.fingerprint", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write each stack's registrations here")
    args = parser.parse_args(argv)
    runs = [(path, path.stem.removeprefix("Pulumi."), False) for path in shipped_stacks()]
    runs.append((PROJECT_DIR / "examples" / "Pulumi.nfs-b2-r2.yaml", FEATURES, True))
    for path, name, features in runs:
        text = stack_text(path, features)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{name}.jsonl").write_text(text)
        print(f"{hashlib.sha256(text.encode()).hexdigest()[:16]}  {name}  {text.count(chr(10))} registrations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
