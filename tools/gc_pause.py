"""The cyclic garbage collector paused for the length of one run of the program.

A run allocates hundreds of thousands of objects that live until it ends (resources, Outputs,
futures, tasks, the RPC messages). With the collector on, each of its full passes walks all of
them, and the passes come more often as the heap grows: under mocks a 200-app run cost 2.4x a
100-app run instead of 2x (tools.bench); under the engine, 500 apps previewed in 39.0 s with the
collector on and 22.6 s with it paused, the peak RSS 244 and 257 MB (tools.bench --engine's
stack, one process each). Reference counting frees almost everything anyway; the collector, back
on afterwards, takes the cycles in its own time.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
