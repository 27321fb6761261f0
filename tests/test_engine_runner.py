"""How tools.engine calls the program: from a thread of its own, in the SDK's context and loop.

The Automation API calls the program inside a coroutine on the SDK's event loop, deep in its gRPC
server's thread; the SDK turns every frame below a resource's constructor into its stack trace.
These run the wrapper the same way (a coroutine on a running loop) without the engine.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import traceback

import pytest

from tools.engine import on_a_stack_of_its_own

SETTING: contextvars.ContextVar[str] = contextvars.ContextVar("setting", default="unset")


def called_from_a_coroutine(program, depth: int = 0):  # type: ignore[no-untyped-def]
    """`program()` as the SDK calls it: synchronously, in a task on a running loop, `depth`
    frames further down (the gRPC server's and the stack runner's frames in the real thing)."""

    async def sdk_side() -> object:
        SETTING.set("the SDK's")
        result = nested(depth)
        return await result if inspect.isawaitable(result) else result

    def nested(n: int) -> object:
        return nested(n - 1) if n else program()

    loop = asyncio.new_event_loop()
    try:
        return loop, loop.run_until_complete(sdk_side())
    finally:
        loop.close()


def test_the_program_sees_only_its_own_frames_whatever_the_depth_it_is_called_from():
    seen: list[int] = []

    def program() -> None:
        seen.append(len(traceback.extract_stack()))

    called_from_a_coroutine(on_a_stack_of_its_own(program), depth=0)
    called_from_a_coroutine(on_a_stack_of_its_own(program), depth=30)
    called_from_a_coroutine(program, depth=30)
    shallow, deep, unwrapped = seen
    assert shallow == deep <= 3  # the thread's entry and the program
    assert unwrapped > 30


async def registration() -> str:
    return "registered"


def test_the_program_runs_in_the_sdks_context_on_the_sdks_loop():
    seen: dict[str, object] = {}

    def program() -> None:
        seen["setting"] = SETTING.get()
        seen["loop"] = asyncio.get_event_loop()
        seen["task"] = asyncio.ensure_future(registration())

    loop, _ = called_from_a_coroutine(on_a_stack_of_its_own(program))
    assert seen["setting"] == "the SDK's"
    assert seen["loop"] is loop
    assert seen["task"].get_loop() is loop  # type: ignore[attr-defined]
    assert seen["task"].result() == "registered"  # type: ignore[attr-defined]  # the loop ran it


def test_the_programs_error_is_raised_where_the_sdk_called_it():
    def program() -> None:
        raise KeyError("backups:apps[0]")

    with pytest.raises(KeyError, match="apps"):
        called_from_a_coroutine(on_a_stack_of_its_own(program))
