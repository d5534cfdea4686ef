"""Loading a function folder (`functions/<name>/handler.py`) under a unique module name.

Two functions whose files are both called `handler.py` never collide: each folder becomes a
package named `eventfn_functions.<name>` so relative imports inside a function work too.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from pathlib import Path

from eventfn._app import App
from eventfn._errors import HandlerNotFound

HANDLER_MODULE = "handler"
PACKAGE_ROOT = "eventfn_functions"
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def available_functions(functions_dir: Path) -> list[str]:
    """Names of the function folders under `functions_dir` (those with a handler module)."""
    if not functions_dir.is_dir():
        return []
    return sorted(
        entry.name
        for entry in functions_dir.iterdir()
        if entry.is_dir() and (entry / f"{HANDLER_MODULE}.py").is_file()
    )


def module_name(function: str) -> str:
    """The unique package name a function folder is imported under."""
    return f"{PACKAGE_ROOT}.{function.replace('-', '_')}"


def load_function(name: str, functions_dir: Path) -> App:
    """Import `functions_dir/<name>/handler.py` and return its `App`."""
    if not _NAME.match(name):
        raise HandlerNotFound(f"{name!r} is not a valid function name (lowercase, digits, '-')")
    folder = functions_dir / name
    if not (folder / f"{HANDLER_MODULE}.py").is_file():
        found = ", ".join(available_functions(functions_dir)) or "none"
        raise HandlerNotFound(
            f"no function {name!r} in {functions_dir} (expected {name}/{HANDLER_MODULE}.py); "
            f"functions found: {found}"
        )
    module = _import_handler(name, folder)
    apps = [value for value in vars(module).values() if isinstance(value, App)]
    if len(apps) != 1:
        raise HandlerNotFound(
            f"{folder / HANDLER_MODULE}.py must define exactly one eventfn.App (found {len(apps)})"
        )
    return apps[0]


def _import_handler(name: str, folder: Path) -> types.ModuleType:
    _ensure_package(PACKAGE_ROOT, None)
    package = module_name(name)
    _ensure_package(package, folder)
    qualified = f"{package}.{HANDLER_MODULE}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    return importlib.import_module(qualified)


def _ensure_package(name: str, folder: Path | None) -> None:
    if name in sys.modules:
        return
    package = types.ModuleType(name)
    package.__path__ = [str(folder)] if folder is not None else []
    package.__package__ = name
    sys.modules[name] = package
