"""How a config key path is spelled in messages: `backups:apps[0].capacity`."""

from __future__ import annotations

import re
from collections.abc import Iterable

NAMESPACE = "backups"
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: A key path as a tuple, like ("apps", 3, "name").
KeyPath = tuple[object, ...]


def format_path(loc: Iterable[object]) -> str:
    """`backups:apps[0].capacity`; map keys that are not plain names the way `pulumi config
    set --path` spells them: `backups:schedulePins["media/radarr/nas"]`."""
    path = NAMESPACE + ":"
    for index, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        elif index and not _PLAIN_KEY.fullmatch(str(part)):
            path += "[" + _quoted(str(part)) + "]"
        else:
            path += ("." if index else "") + str(part)
    return path


def _quoted(key: str) -> str:
    # repr-like escaping so a control character in a key cannot break the line it is shown on
    escaped = key.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return f'"{escaped[:60]}{"..." if len(escaped) > 60 else ""}"'
