"""Labels the program puts on what it creates.

They are the contract between the program, the policy pack and the in-cluster admission
policies: a guardrail recognises a repository Secret or a backed-up PVC by these labels, not by
guessing from names.
"""

MANAGED_BY = {"app.kubernetes.io/managed-by": "homelab-backups"}

#: On every repository Secret; the value is the repository name from config.
REPOSITORY = "backups.homelab.dev/repository"
#: Annotation on every repository Secret: the real target (a filesystem URL does not say it).
TARGET = "backups.homelab.dev/target"
#: On every PVC whose data a ReplicationSource backs up.
BACKED_UP = "backups.homelab.dev/backed-up"
#: On every object of one database's pgBackRest backup; the value is the database name.
DATABASE = "backups.homelab.dev/database"
#: On every object that belongs to one app; the value is the app name.
APP = "backups.homelab.dev/app"
#: On the extra ReplicationSource of `backupNow` (value "backupNow"): the one source with a manual
#: trigger and no schedule that the pack lets through; the app's scheduled sources never have it.
ONE_OFF = "backups.homelab.dev/one-off"


def repository(name: str) -> dict[str, str]:
    return {**MANAGED_BY, REPOSITORY: name}


def app(name: str) -> dict[str, str]:
    return {**MANAGED_BY, APP: name}


def one_off_source(name: str) -> dict[str, str]:
    return {**app(name), ONE_OFF: "backupNow"}


def backed_up_volume(name: str) -> dict[str, str]:
    return {**app(name), BACKED_UP: "true"}
