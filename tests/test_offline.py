"""The offline harness: runs are isolated from each other and from code outside any run."""

from __future__ import annotations

import threading

import pulumi
import pytest

from components.config import ConfigError

from .conftest import dev_config, run_config, with_changes

#: A dev-stack run takes well under a second; this only bounds a hang.
HANG_LIMIT_S = 60


def _finishes(run):
    """What `run` returns, called on a watcher thread: the test fails, rather than hangs, if it
    never returns, and an error it raises is raised here."""
    outcome: dict = {}

    def watched() -> None:
        try:
            outcome["result"] = run()
        except BaseException as error:  # noqa: BLE001 re-raised on the test's thread
            outcome["error"] = error

    watcher = threading.Thread(target=watched, daemon=True)
    watcher.start()
    watcher.join(HANG_LIMIT_S)
    assert not watcher.is_alive(), f"the run did not finish within {HANG_LIMIT_S} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def test_an_output_made_outside_any_run_does_not_stall_the_next_run():
    """The SDK's mocks share one set of outstanding Outputs across runs unless the harness gives
    each run its own; an Output of the main thread's loop would then be awaited forever."""
    stray = pulumi.Output.secret("made on the main thread")  # noqa: F841 (kept alive on purpose)

    def failing_then_clean():
        with pytest.raises(ConfigError):
            run_config(with_changes(apps=[{"name": "radarr", "namespace": "media", "capacity": "10Gx"}]))
        return run_config(dev_config())

    run = _finishes(failing_then_clean)
    assert any(r.type.endswith(":ReplicationSource") for r in run.registrations)


def test_each_run_records_only_its_own_resources():
    first = run_config(dev_config())
    second = run_config(with_changes(apps=dev_config()["apps"][:1]))
    assert len(second.registrations) < len(first.registrations)
    assert len({r.urn for r in second.registrations}) == len(second.registrations)
