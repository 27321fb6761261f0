"""The Pulumi SDK internals the offline harness relies on, in one place.

The offline preview imitates the engine with the SDK's own machinery, some of which is private.
Everything private is imported here and nowhere else, against the versions the lock pins; a
test (tests/test_sdk_shim.py) fails when the installed versions differ, so an upgrade has to
come through this file and be checked against the engine's behaviour again.

- `_sync_await`, `run_pulumi_func`, `SETTINGS.outputs`: run a program's queued work to the end
  outside the language host.
- `rpc._special_secret_sig`, `rpc._special_sig_key`: the wire markers of a secret.
- `_PolicyAnalyzerServicer` and its `_get_enforcement_level`: the analyzer the engine talks to
  over gRPC, called in-process.
"""

from __future__ import annotations

from typing import Any

from pulumi.runtime import mocks, proto, rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer

#: The versions this shim was written and checked against (requirements.lock).
PINNED = {"pulumi": "3.272.0", "pulumi-policy": "1.21.0"}

SECRET_SIG: str = rpc._special_secret_sig
SIG_KEY: str = rpc._special_sig_key
UNKNOWN: str = rpc.UNKNOWN

MockMonitor = mocks.MockMonitor
AnalyzerServicer = _PolicyAnalyzerServicer
sync_await = _sync_await
serialize_properties = rpc.serialize_properties


def drain() -> None:
    """Let the SDK finish every registration the program's constructors queued."""
    _sync_await(run_pulumi_func(lambda: None))


def track_outputs_per_run() -> None:
    """A set of outstanding Outputs for the current context alone (see offline.run_isolated)."""
    settings.SETTINGS.outputs = set()


def enforcement_level(servicer: Any, policy: Any) -> EnforcementLevel:
    """The level the analyzer will enforce `policy` at, after the pack config."""
    level: EnforcementLevel = servicer._get_enforcement_level(policy)
    return level


__all__ = ["PINNED", "SECRET_SIG", "SIG_KEY", "UNKNOWN", "AnalyzerServicer", "MockMonitor", "drain",
           "enforcement_level", "proto", "serialize_properties", "sync_await", "track_outputs_per_run"]
