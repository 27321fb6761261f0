"""A migration from the seeds' setups cannot bite: no object the program makes has a name the
seeds give an object of their own (the guide lets Flux prune those), and renames are aliased."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.offline import load_stack_file, run_program, stack_file

from .conftest import dev_config, run_config

EXAMPLES = sorted(Path(__file__).parent.parent.joinpath("examples").glob("Pulumi.*.yaml"))

#: Objects the seeds' setups deploy once per cluster (kind, name), as each seed names them. The
#: migration guide removes them from Flux; Flux prunes by kind and name, so a program object with
#: one of these names would be deleted with them.
SEED_OBJECTS = {
    ("MutatingAdmissionPolicy", "volsync-mover-jitter"): "seeds 003 and 004",
    ("MutatingAdmissionPolicyBinding", "volsync-mover-jitter"): "seeds 003 and 004",
    ("MutatingAdmissionPolicy", "volsync-mover-nfs"): "seed 003",
    ("MutatingAdmissionPolicyBinding", "volsync-mover-nfs"): "seed 003",
    ("PrometheusRule", "volsync-alerts"): "seed 001",
    ("CronJob", "volsync-stuck-restore-detector"): "seed 001",
    ("CronJob", "volsync-backup-verifier"): "seed 001",
    ("Secret", "kopia-secret"): "seed 001 (volsync-system)",
}


@pytest.mark.parametrize("stack", [stack_file("dev"), *EXAMPLES], ids=lambda p: p.name)
def test_no_object_the_program_makes_has_a_name_a_seed_gives_its_own(stack: Path) -> None:
    config, secret_keys, _ = load_stack_file(stack)
    run = run_program(config, secret_keys, stack=stack.stem.split(".", 1)[1])
    made = {(r.inputs["kind"], r.inputs["metadata"]["name"]) for r in run.registrations
            if r.type.startswith("kubernetes:") and "kind" in r.inputs}
    assert len(made) > 10
    assert {key: SEED_OBJECTS[key] for key in made & set(SEED_OBJECTS)} == {}


def test_the_renamed_jitter_policy_carries_its_former_name_and_api_version_so_an_upgrade_replaces_it() -> None:
    """An upgrade from the last version, which named it volsync-mover-jitter and (by default, for
    1.35) typed it v1beta1, must find it by name and type: a replace, not a create and a delete."""
    run = run_config(dev_config())
    group = "kubernetes:admissionregistration.k8s.io"
    renamed = {r.name: (r.type, r.aliases) for r in run.registrations
               if r.type.startswith(group) and r.inputs["kind"].startswith("MutatingAdmissionPolicy")}
    assert renamed == {
        "backups-mover-jitter": (f"{group}/v1:MutatingAdmissionPolicy", [
            ("volsync-mover-jitter", ""), ("volsync-mover-jitter", f"{group}/v1beta1:MutatingAdmissionPolicy"),
            ("", f"{group}/v1beta1:MutatingAdmissionPolicy")]),
        "backups-mover-jitter-binding": (f"{group}/v1:MutatingAdmissionPolicyBinding", [
            ("volsync-mover-jitter-binding", ""),
            ("volsync-mover-jitter-binding", f"{group}/v1beta1:MutatingAdmissionPolicyBinding"),
            ("", f"{group}/v1beta1:MutatingAdmissionPolicyBinding")]),
    }
