"""Command groups contributed by other parts of eventfn (the local mesh, later tools).

Each entry registers a sub-command on the `eventfn` parser; keeping the list here keeps
cli.py small as the project grows.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from eventfn._cli_backup import register as register_backup_commands
from eventfn._cli_dlq import register as register_dlq_commands
from eventfn._cli_inventory import register as register_inventory_commands
from eventfn._cli_lake import register as register_lake_commands
from eventfn._cli_users import register as register_users_commands
from eventfn._cli_workflow import register as register_workflow_commands
from eventfn.mesh._cli import register as register_mesh_commands

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

REGISTRARS: list[Registrar] = [
    register_mesh_commands,
    register_dlq_commands,
    register_users_commands,
    register_lake_commands,
    register_inventory_commands,
    register_backup_commands,
    register_workflow_commands,
]
