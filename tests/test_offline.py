"""The offline harness: runs are isolated from each other and from code outside any run."""

from __future__ import annotations

import threading
from importlib import metadata

import pulumi
import pytest

from components.config import ConfigError
from tools.offline import PROJECT_DIR, load_stack_file, run_program

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
            run_config(with_changes(apps=[{"name": "radarr", "namespace": "media", "capacity": "10Gx"}]), fresh=True)
        return run_config(dev_config(), fresh=True)

    run = _finishes(failing_then_clean)
    assert any(r.type.endswith(":ReplicationSource") for r in run.registrations)


def test_each_run_records_only_its_own_resources():
    first = run_config(dev_config(), fresh=True)
    second = run_config(with_changes(apps=dev_config()["apps"][:1]), fresh=True)
    assert len(second.registrations) < len(first.registrations)
    assert len({r.urn for r in second.registrations}) == len(second.registrations)


def test_the_engine_view_adds_the_stack_and_each_default_provider_before_its_first_user():
    """Resources that name no provider get the package's default provider from the engine,
    and the policy pack is asked about that provider too (it travels with their requests)."""
    config, secret_keys, _ = load_stack_file(PROJECT_DIR / "examples" / "Pulumi.nfs-b2-r2.yaml")
    run = run_program(config, secret_keys)
    seen = run.as_engine_sees_it()
    position = {r.urn: i for i, r in enumerate(seen)}

    def provider_of(r):
        return seen[position[r.provider.rsplit("::", 1)[0]]]

    assert seen[0].type == "pulumi:pulumi:Stack" and seen[0].urn == run.stack.urn
    users = [r for r in seen if r.custom and not r.type.startswith("pulumi:providers:")]
    assert all(position[provider_of(r).urn] < position[r.urn] for r in users)
    named_none = {r.urn for r in run.registrations if r.custom and not r.provider}
    defaults = {provider_of(r).name for r in users if r.urn in named_none}
    kubernetes = "default_" + metadata.version("pulumi-kubernetes").replace(".", "_")
    assert defaults == {kubernetes, "default"}  # the engine's names; "default" is the dynamic provider's
    assert len(seen) == len(run.registrations) + 1 + len(defaults)
