"""homelab-backups: stack config -> BackupStack -> exports. Nothing else happens here."""

import pulumi

from components.config import load_stack_config
from components.stack import BackupStack, BackupStackArgs

config = load_stack_config()  # raises ConfigError (a clean RunError) before any resource exists
stack = BackupStack("backups", BackupStackArgs(config=config))
pulumi.export("inventory", stack.inventory)
pulumi.export("databasePlugins", stack.database_plugins)
