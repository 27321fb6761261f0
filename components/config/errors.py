"""Config problems as a person reads them: each with its key path, never with a secret.

A value is quoted back only when it is a short scalar under a key that holds no secret; a
mapping or a list is described, not printed (a list key written as a mapping would otherwise
print every password in it). As a last guard, every message is scrubbed of the secret strings
the raw config holds, so no message can carry one whatever produced it.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Union

import pulumi
from pydantic import BaseModel

from ..keypath import KeyPath, format_path
from .cluster import KEYWORD_TAG, LIST_TAG
from .fields import shown
from .shared import EXTERNAL_TAG, PLAIN_TAG

#: Keys whose values are secret, and keys under which everything is treated as secret.
SECRET_KEYS = frozenset({"password", "passphrase", "accessKeyId", "secretAccessKey", "access_key_id", "secret_access_key"})
SECRET_BRANCHES = frozenset({"password", "credentials", "encryption"})
#: What a secret reads as wherever one would have been shown.
REDACTED = "[secret]"
_TAGS = frozenset({PLAIN_TAG, EXTERNAL_TAG, KEYWORD_TAG, LIST_TAG, "[key]"})


class ConfigError(pulumi.RunError):
    """Invalid stack config. A RunError, so the real CLI prints the message without a traceback."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid stack config ({count}):\n  " + "\n  ".join(problems))


def is_secret_path(loc: Iterable[object]) -> bool:
    return any(part in SECRET_BRANCHES or part in SECRET_KEYS for part in loc)


#: The reference to an external secret: its fields (store, key, property) are names, not values.
_REFERENCE_KEYS = frozenset({"externalSecret", "external_secret"})


def secret_strings(raw: Any, under_secret: bool = False) -> set[str]:
    """Every string in `raw` that sits under a secret-bearing key: the secret values. A mapping
    under `externalSecret` names where a secret is kept (a store, an item, a property such as
    `password`), which is no secret: scrubbing those words would eat key paths and messages."""
    found: set[str] = set()
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            if key in _REFERENCE_KEYS and isinstance(value, Mapping):
                continue
            found |= secret_strings(value, under_secret or key in SECRET_KEYS or key in SECRET_BRANCHES)
    elif isinstance(raw, (list, tuple)):
        for value in raw:
            found |= secret_strings(value, under_secret)
    elif under_secret and isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
        found.add(str(raw))
    return found


def scrubbed(problems: Iterable[str], secrets: set[str]) -> list[str]:
    """`problems` with every secret string replaced, longest first (one may contain another).
    One- and two-character strings are left: they would blank out ordinary words, and no
    message quotes them as values (secret values are never quoted in the first place)."""
    ordered = sorted((s for s in secrets if len(s) > 2), key=len, reverse=True)
    result = []
    for problem in problems:
        for secret in ordered:
            problem = problem.replace(secret, REDACTED)
        result.append(problem)
    return list(dict.fromkeys(result))


def key_path(loc: Iterable[object]) -> KeyPath:
    """A pydantic error location without the union tags pydantic adds to it."""
    return tuple(part for part in loc if not (isinstance(part, str) and part in _TAGS))


def describe(error: Mapping[str, Any], root: type[BaseModel]) -> str:
    """One pydantic error as `<key path>: <what is wrong>`."""
    loc = key_path(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        known = field_names_at(root, loc[:-1])
        key = str(loc[-1])
        hint = difflib.get_close_matches(key, known, n=1)
        fix = f"did you mean {hint[0]!r}?" if hint else f"known keys: {', '.join(sorted(known))}"
        return f"{format_path(loc)}: unknown key {shown(key)}; {fix}"
    if kind == "missing":
        return f"{format_path(loc)}: is required"
    return f"{format_path(loc)}: {_message(error, is_secret_path(loc))}"


def _message(error: Mapping[str, Any], secret: bool) -> str:
    kind, value = error["type"], error.get("input")
    scalar = isinstance(value, (str, int, float, bool)) or value is None
    quoted = shown(value) if scalar and not secret else _what(value)
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{quoted} is not a whole number"
    if kind in ("tuple_type", "list_type"):
        return f"{quoted} is not a list (write it as [a, b])"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{quoted} is not a mapping (write it as {{key: value}})"
    if kind in ("string_type",):
        return f"{quoted} is not text"
    if kind in ("bool_type", "bool_parsing"):
        return f"{quoted} is not true or false"
    if kind == "greater_than_equal":
        return f"{quoted} is negative; use 0 or more" if error.get("ctx", {}).get("ge") == 0 else \
            f"{quoted} is below the minimum of {error['ctx']['ge']}"
    if kind == "less_than_equal":
        return f"{quoted} is above the maximum of {error['ctx']['le']}"
    if kind == "too_short":
        return "is empty; list at least one"
    if kind == "too_long":
        return f"has more than the {error['ctx'].get('max_length')} items allowed"
    if kind == "string_too_short":
        return "is empty"
    if kind == "string_too_long":
        return f"is longer than {error['ctx'].get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        return (f"{quoted} does not match the form {error['ctx']['pattern']}" if not secret
                else "contains characters that are not allowed")
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        return f"{quoted} is not of an allowed form"
    if kind == "value_error":
        # Our own validators quote the value they refuse. Under a secret-bearing key (an
        # externalSecret's store, say, where a password may be pasted by mistake) the message is
        # not shown: the scrub leaves reference names alone, so it cannot stand behind it there.
        message = str(error["msg"]).removeprefix("Value error, ")
        if secret and isinstance(value, str) and shown(value)[1:-1][:40] in message:
            return "is not valid (it is under a secret-bearing key, so the value is not shown)"
        return message
    message = str(error["msg"])
    return message if not secret else f"{message.split(',')[0]} (the value is secret, so it is not shown)"


def _what(value: object) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "the value"


def field_names_at(root: type[BaseModel], loc: KeyPath) -> list[str]:
    """Known keys of the model at `loc`, to suggest a fix for a misspelt key."""
    candidates: list[Any] = [root]
    for part in loc:
        nxt: list[Any] = []
        for tp in candidates:
            for leaf in _leaf_types(tp):
                if isinstance(part, int):
                    nxt.extend(typing.get_args(leaf)[:1] if typing.get_origin(leaf) is tuple else [])
                elif isinstance(leaf, type) and issubclass(leaf, BaseModel):
                    field = _field_by_alias(leaf, str(part))
                    if field is not None:
                        nxt.append(field.annotation)
        candidates = nxt
    names: list[str] = []
    for tp in candidates:
        for leaf in _leaf_types(tp):
            if isinstance(leaf, type) and issubclass(leaf, BaseModel):
                names.extend(f.alias or n for n, f in leaf.model_fields.items())
    return names


def _leaf_types(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _leaf_types(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [leaf for arg in typing.get_args(tp) for leaf in _leaf_types(arg)]
    return [tp]


def _field_by_alias(model: type[BaseModel], key: str) -> Any:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None
