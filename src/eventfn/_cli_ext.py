"""Command groups contributed by other parts of eventfn (the local mesh, later tools).

Each entry registers a sub-command on the `eventfn` parser; keeping the list here keeps
cli.py small as the project grows.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from eventfn.mesh._cli import register as register_mesh_commands

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

REGISTRARS: list[Registrar] = [register_mesh_commands]
