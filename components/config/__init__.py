"""The stack-config contract (`backups:*` keys), parsed once, validated completely.

Everything the program needs from `Pulumi.<stack>.yaml` is turned into these frozen pydantic
models here and nowhere else, with every default. Any problem stops the program before a
resource is registered, all problems at once, each as `backups:<key path>: <what is wrong and
the allowed form>`, with no traceback and no secret value.

Modules, one concern each: `fields` (validated scalar types), `shared` (secrets, mover
identity, retention), `repositories`, `apps`, `hooks` (an app's backup hooks), `databases`, `cluster` (cluster-wide keys),
`stack` (the whole model and its cross-key rules), `errors` (messages), `loading`.
"""

from ..keypath import NAMESPACE, format_path
from .apps import App, AppVolume, PointInTime, Recovery, Restore, RestoreSource
from .cluster import Admission, Alerts, Defaults, Drills, Guardrails, KubernetesSettings
from .databases import Database, DatabaseRecovery, DatabaseRetention, DatabaseSchedule, Encryption, WalSpool
from .errors import ConfigError
from .hooks import ExecHook, Hook, Hooks, HttpHook
from .loading import decode_config_value, load_stack_config, parse_stack_config, stack_config_of
from .repositories import (
    FILESYSTEM_BACKENDS,
    S3_BACKENDS,
    CephfsTarget,
    Maintenance,
    Mirror,
    NfsTarget,
    Repository,
    S3Credentials,
    S3Target,
    UiIngress,
    WebUi,
)
from .shared import CacheSettings, ExternalSecretRef, ExternalSecretSource, MoverIdentity, Retention, SecretValue
from .stack import StackConfig

__all__ = [
    "FILESYSTEM_BACKENDS", "NAMESPACE", "S3_BACKENDS",
    "Admission", "Alerts", "App", "AppVolume", "CacheSettings", "CephfsTarget", "ConfigError",
    "Database", "DatabaseRecovery", "DatabaseRetention", "DatabaseSchedule", "Defaults", "Drills", "Encryption",
    "ExecHook", "ExternalSecretRef", "ExternalSecretSource", "Guardrails", "Hook", "Hooks", "HttpHook", "KubernetesSettings", "Maintenance",
    "Mirror", "MoverIdentity", "NfsTarget", "PointInTime", "Recovery", "Repository", "Restore", "RestoreSource", "Retention",
    "S3Credentials", "S3Target", "SecretValue", "StackConfig", "UiIngress", "WalSpool", "WebUi",
    "decode_config_value", "format_path", "load_stack_config", "parse_stack_config", "stack_config_of",
]
