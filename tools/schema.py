"""The JSON schema of a `Pulumi.<stack>.yaml` file, generated from the config models.

    python -m tools.schema --write   # regenerate schema/stack-config.schema.json
    python -m tools.schema --check   # exit 1 when the committed file is out of date

Editors use it to complete and check `backups:*` keys (see the README). It covers the shape of
each key (names, types, enums, patterns, unknown keys); cross-key rules (references to
repositories, duplicates) are checked by the program itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from components.config import NAMESPACE, StackConfig

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "stack-config.schema.json"
SECURE = {"type": "object", "properties": {"secure": {"type": "string"}}, "required": ["secure"],
          "additionalProperties": False, "description": "an encrypted value (pulumi config set --secret)"}


def _allow_secure(node: Any) -> Any:
    """Wherever a secret string goes, the stack file may hold `{secure: ...}` instead."""
    if isinstance(node, dict):
        if node.get("format") == "password":
            return {"anyOf": [node, SECURE]}
        return {k: _allow_secure(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_allow_secure(v) for v in node]
    return node


def stack_file_schema() -> dict:
    model = StackConfig.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    definitions = _allow_secure(model.pop("$defs", {}))
    properties = _allow_secure(model["properties"])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "homelab-backups stack file (Pulumi.<stack>.yaml)",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": {f"{NAMESPACE}:{key}": value for key, value in properties.items()},
                "required": [f"{NAMESPACE}:{key}" for key in model.get("required", [])],
                # Other namespaces (aws:, kubernetes:, pulumi:) are not ours to check; ours are.
                "patternProperties": {f"^(?!{NAMESPACE}:)": {}},
                "additionalProperties": False,
            },
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
            "environment": {},
        },
        "$defs": definitions,
    }


def rendered() -> str:
    return json.dumps(stack_file_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.schema")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.write:
        SCHEMA_PATH.parent.mkdir(exist_ok=True)
        SCHEMA_PATH.write_text(rendered())
        print(f"wrote {SCHEMA_PATH}")
        return 0
    if not SCHEMA_PATH.exists() or SCHEMA_PATH.read_text() != rendered():
        print(f"{SCHEMA_PATH} is out of date: run `make schema`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
