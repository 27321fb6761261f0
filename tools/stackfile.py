"""Reading a `Pulumi.<stack>.yaml` file strictly and within bounds, for the tools.

The engine parses stack files itself; the offline tools must read them the same way without
being the weak spot: a duplicate key is an error (YAML would keep the last silently), times stay
text as they do for the engine (YAML 1.1 would make `restoreAsOf: 2026-01-14T12:00:00Z` a
datetime), aliases may not expand past a bound (a 400-byte "billion laughs" file took 4 GB),
and an error says where, never quoting the line: a stack file holds passwords.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20
#: Values a document may expand to, aliases counted each time they are used.
MAX_NODES = 200_000


class StackFileError(Exception):
    """A stack file that cannot be read: where and why, and no content of the file."""


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader with duplicate keys refused and timestamps left as strings. On libyaml's parser
    (the same events, marks and errors; a third of the fuzz test's time went to the pure-Python
    one), with the constructor and resolver in Python as ever."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key (a list): yaml reports it below
                duplicate = False
            if duplicate:
                raise StackFileError(f"line {key_node.start_mark.line + 1}: duplicate key {_shown(key)}")
            if not isinstance(key, (list, dict)):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


# Timestamps stay text, as in the engine's YAML 1.2 reading.
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(path: Path) -> Any:
    """The one YAML document in `path`. Raises StackFileError for anything unreadable."""
    if str(path) in ("", "."):
        raise StackFileError("no file named (an empty path)")
    if not path.exists():
        raise StackFileError(f"{path}: no such file")
    if not path.is_file():
        raise StackFileError(f"{path}: not a file")
    if path.stat().st_size > MAX_BYTES:
        raise StackFileError(f"{path}: larger than {MAX_BYTES >> 10} KiB; a stack file is a page of config")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise StackFileError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise StackFileError(f"{path}: {error.strerror}") from None
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _bounded(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise StackFileError(f"{path}: not valid YAML at {where}: {error.problem}") from None
    except yaml.YAMLError as error:
        raise StackFileError(f"{path}: not valid YAML ({type(error).__name__})") from None
    except StackFileError as error:
        raise StackFileError(f"{path}: {error}") from None
    except RecursionError:
        raise StackFileError(f"{path}: nested too deeply") from None
    finally:
        loader.dispose()


def _bounded(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand to more than MAX_NODES values, or refer to
    themselves. Sizes are memoized per node, so this costs one pass over the distinct nodes."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in visiting:
            raise StackFileError(f"line {node.start_mark.line + 1}: an alias refers to itself")
        visiting.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        visiting.discard(key)
        if total > MAX_NODES:
            raise StackFileError(f"expands to more than {MAX_NODES} values (through YAML aliases)")
        sizes[key] = total
        return total

    size(root)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:30] + "..."
