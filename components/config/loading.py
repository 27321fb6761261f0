"""Reading the `backups:*` keys: from the running stack (the engine's values) or a config map."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

import pulumi
from pydantic import ValidationError

from ..keypath import NAMESPACE, KeyPath, format_path
from .errors import ConfigError, describe, key_path, scrubbed, secret_strings
from .stack import CrossKeyProblems, StackConfig

#: Structured config larger than this is refused before it is parsed.
MAX_VALUE_BYTES = 1 << 20


def parse_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the `backups:*` keys (without the namespace) into a StackConfig.

    Raises ConfigError listing every problem with its key path, and no secret value: the keys'
    own problems, and with them the problems between keys that `_between_keys_despite` can
    still find (pydantic runs the cross-key rules only on a config whose fields all passed).
    """
    try:
        return StackConfig.model_validate(dict(raw))
    except ValidationError as exc:
        problems: list[str] = []
        errors = exc.errors()
        failed_items = {key_path(e["loc"])[:1] for e in errors if len(key_path(e["loc"])) > 1}
        for error in errors:
            if error["type"] == "too_short" and key_path(error["loc"]) in failed_items:
                continue  # the list is short only because its items failed: they say why
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, CrossKeyProblems):
                problems.extend(f"{format_path(loc)}: {message}" for loc, message in cause.problems)
            else:
                problems.append(describe(error, StackConfig))
        if not any(isinstance(e.get("ctx", {}).get("error"), CrossKeyProblems) for e in errors):
            failed = [key_path(e["loc"]) for e in errors
                      if not (e["type"] == "too_short" and key_path(e["loc"]) in failed_items)]
            problems += _between_keys_despite(raw, failed)
        raise ConfigError(scrubbed(problems, secret_strings(raw))) from None


#: The lists whose entries nothing else refers to by position or by a field: a field of one of
#: them can be left out for the second pass. Repositories are named by apps, databases and
#: mirrors; a default or a top-level setting is read by every rule.
_LEAF_LISTS = ("apps", "recoveries")


def _between_keys_despite(raw: Mapping[str, Any], failed: list[KeyPath]) -> list[str]:
    """The cross-key problems of the config with each failing field of an app or a recovery left
    out, so that one run names a bad `restoreAsOf` of one app and an unknown repository of
    another at once.

    Leaving a field out can invent a problem (an app's `storageClass` left out falls back to a
    default class that may be banned), so a problem that names a failing entry, by key path or
    as `namespace/app`, is held back: it comes on the next run, if it is real. A failure anywhere
    else, or one that cannot be left out (a required field, an entry that is not a mapping),
    holds back the whole second pass: the cross-key rules wait for the fix.
    """
    repaired: dict[str, Any] = copy.deepcopy(dict(raw))
    entries: set[str] = set()
    for loc in failed:
        top = str(loc[0]) if loc else ""
        items = repaired.get(top)
        if top not in _LEAF_LISTS or len(loc) < 3 or not isinstance(loc[1], int) or not isinstance(items, list):
            return []
        entry = items[loc[1]] if 0 <= loc[1] < len(items) else None
        if not isinstance(entry, dict):
            return []
        entry.pop(loc[2], None)
        entries.add(format_path(loc[:2]))
        if isinstance(entry.get("namespace"), str) and isinstance(entry.get("name"), str):
            entries.add(f"{entry['namespace']}/{entry['name']}")
    try:
        StackConfig.model_validate(repaired)
    except ValidationError as exc:
        causes = [e.get("ctx", {}).get("error") for e in exc.errors()]
        crossed = [cause for cause in causes if isinstance(cause, CrossKeyProblems)]
        if len(crossed) != len(causes):
            return []  # a field left out was needed: the rules run once it is fixed
        found = [f"{format_path(loc)}: {message}" for cause in crossed for loc, message in cause.problems]
        return [p for p in found if not any(_names(p, entry) for entry in entries)]
    return []


def _names(problem: str, entry: str) -> bool:
    """Does a problem (its key path or its text) name `entry` (`backups:apps[0]`, `media/radarr`)?
    Whole: `apps[1]` is not `apps[10]`, `media/radarr` not `media/radarr-old`."""
    before = "" if entry.startswith("backups:") else r"(?:^|(?<=[ (',]))"
    return re.search(before + re.escape(entry) + r"(?=$|[.\[: ,)'])", problem) is not None


def load_stack_config() -> StackConfig:
    """Read every `backups:*` key from the Pulumi config of the running stack and parse it.

    Values are read raw: secret keys (`pulumi config set --secret`) are decrypted by the engine
    before the program starts, and the secret-typed fields keep them out of reprs and logs.
    """
    keys = set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.get_config_env())
    config = stack_config_of(
        {key: pulumi.runtime.get_config(key) for key in keys if key.startswith(NAMESPACE + ":")}
    )
    config._secret_keys = frozenset(k for k in keys if pulumi.runtime.is_config_secret(k))
    for warning in config.warnings:
        pulumi.log.warn(warning)  # `pulumi preview` lists it under Diagnostics; the offline preview prints it
    return config


def stack_config_of(values: Mapping[str, Any]) -> StackConfig:
    """Parse the `backups:*` entries of a config map (key -> value as the engine passes it):
    the running stack's, or a stack file's read by a tool."""
    prefix = NAMESPACE + ":"
    problems: list[str] = []
    raw: dict[str, Any] = {}
    for key in sorted(k for k in values if k.startswith(prefix)):
        try:
            raw[key[len(prefix):]] = decode_config_value(key, values[key])
        except ConfigError as error:
            problems += error.problems
    if problems:
        raise ConfigError(problems)
    return parse_stack_config(raw)


def decode_config_value(key: str, value: Any) -> Any:
    """The engine hands structured config over as JSON text and scalars as plain text."""
    if not isinstance(value, str) or not value.lstrip().startswith(("{", "[")):
        return value
    if len(value) > MAX_VALUE_BYTES:
        raise ConfigError([f"{key}: larger than {MAX_VALUE_BYTES >> 10} KiB of structured config"])
    try:
        return json.loads(value)
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise ConfigError([f"{key}: not valid structured config ({reason})"]) from None
