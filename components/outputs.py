"""Outputs of values the program already knows (names, inventories) without per-leaf Outputs."""

from __future__ import annotations

from typing import Any, TypeVar

import pulumi

T = TypeVar("T")


def known(value: T) -> pulumi.Output[T]:
    """An Output of `value`: plain data (dicts, lists, strings) the program computed itself.

    `Output.from_input` walks a dict or list looking for Outputs inside, and builds an Output and
    a gather for every nested container and leaf on the way: about fifteen per app for the
    inventory alone, 15% of all the SDK's function calls in a 100-app preview (cProfile, via
    tools.bench's stack). An apply's plain result is taken as it is, so one apply on a known
    scalar yields the same value, known and not secret, for one task.

    Raises TypeError when `value` holds an Output (it would stay unresolved inside): use
    `Output.from_input` for those. The check is a plain walk, far cheaper than Outputs.
    """
    _refuse_outputs(value, "value")
    return pulumi.Output.from_input(True).apply(lambda _: value)


def _refuse_outputs(value: Any, path: str) -> None:
    if isinstance(value, pulumi.Output):
        raise TypeError(f"known(): {path} is an Output; use pulumi.Output.from_input for values holding Outputs")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_outputs(item, f"{path}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _refuse_outputs(item, f"{path}[{index}]")
