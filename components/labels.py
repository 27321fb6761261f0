"""Labels the program puts on what it creates.

They are the contract between the program, the policy pack and the in-cluster admission
policies: a guardrail recognises a repository Secret or a backed-up PVC by these labels, not by
guessing from names. The keys are defined once, in `policies/backup_contract.py`, which the pack
reads too; the short names here are the program's.
"""

from backup_contract import APP_LABEL as APP
from backup_contract import BACKED_UP_LABEL as BACKED_UP
from backup_contract import DATABASE_LABEL as DATABASE
from backup_contract import MANAGED_BY, VOLSYNC_GROUP
from backup_contract import ONE_OFF_LABEL as ONE_OFF
from backup_contract import REPOSITORY_LABEL as REPOSITORY
from backup_contract import TARGET_ANNOTATION as TARGET

__all__ = ["APP", "BACKED_UP", "DATABASE", "MANAGED_BY", "ONE_OFF", "REPOSITORY", "TARGET", "VOLSYNC_GROUP",
           "app", "backed_up_volume", "one_off_source", "repository", "web_ui_selector"]


def repository(name: str) -> dict[str, str]:
    return {**MANAGED_BY, REPOSITORY: name}


def app(name: str) -> dict[str, str]:
    return {**MANAGED_BY, APP: name}


def one_off_source(name: str) -> dict[str, str]:
    return {**app(name), ONE_OFF: "backupNow"}


def backed_up_volume(name: str) -> dict[str, str]:
    return {**app(name), BACKED_UP: "true"}


def web_ui_selector(name: str) -> dict[str, str]:
    """What a web UI's Service selects its pod by (and the pod's only labels)."""
    return {"app.kubernetes.io/name": "kopia-ui", "app.kubernetes.io/instance": name}
