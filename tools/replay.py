"""Bare registration, the floor every bench compares the program with: resources registered
straight to the SDK under the harness's mocks (no components, no parents, no config)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pulumi

from .offline import Secret, _RecordingMonitor, run_isolated

#: (type token, resource name, custom?, inputs with secrets as offline.Secret)
Bare = tuple[str, str, bool, dict[str, Any]]


def as_inputs(value: Any) -> Any:
    """Recorded inputs as a program would pass them: a recorded Secret becomes a secret Output."""
    if isinstance(value, Secret):
        return pulumi.Output.secret(as_inputs(value.value))
    if isinstance(value, dict):
        return {k: as_inputs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_inputs(v) for v in value]
    return value


def replay(resources: Iterable[Bare]) -> None:
    """Register `resources` bare, exactly as the program is run (tools.offline.run_isolated)."""
    monitor = _RecordingMonitor()

    def set_up() -> None:
        pulumi.runtime.set_mocks(monitor.mocks, "bench", "bench", True, monitor=monitor)

    def program() -> None:
        for resource_type, name, custom, inputs in resources:
            if custom:
                pulumi.CustomResource(resource_type, name, as_inputs(inputs))
            else:
                pulumi.ComponentResource(resource_type, name)

    run_isolated(set_up, program, lambda: None)
