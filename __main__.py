"""homelab-backups: stack config -> plan -> BackupStack -> exports. Nothing else happens here."""

import pulumi

from components.config import load_stack_config
from components.plan import plan_stack
from components.stack import BackupStack, BackupStackArgs

# Both raise ConfigError (a clean RunError) before any resource exists.
config = load_stack_config()
plan = plan_stack(config)
stack = BackupStack("backups", BackupStackArgs(plan=plan))
pulumi.export("inventory", stack.inventory)
pulumi.export("databasePlugins", stack.database_plugins)
