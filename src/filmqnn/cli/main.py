"""Entry point of the `filmqnn` console command.

The hardware commands import only their own module, so `filmqnn explore` starts without
importing torch; any other command (or `--help`) loads every command module.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

#: Every module that registers commands on the shared app.
COMMAND_MODULES = (
    "quant_commands", "deploy_commands", "explore_command", "dsp_pack_command", "hls_commands",
    "onnx_command", "pynq_commands",
)
#: Commands of the modules that need no torch, and those modules.
LIGHT_COMMANDS = ("explore", "boards", "dsp-pack")
LIGHT_MODULES = ("explore_command", "dsp_pack_command")


def load_app(argv: list[str] | None = None) -> typer.Typer:
    """The app with the commands ``argv`` may invoke registered (all when in doubt)."""
    from filmqnn.cli.app import app

    args = sys.argv[1:] if argv is None else argv
    command = next((a for a in args if not a.startswith("-")), None)
    modules = LIGHT_MODULES if command in LIGHT_COMMANDS else COMMAND_MODULES
    for m in modules:
        importlib.import_module(f"filmqnn.cli.{m}")
    return app


def main() -> None:
    """Run the command line."""
    load_app()()


def __getattr__(name: str) -> Any:
    if name == "app":  # `from filmqnn.cli.main import app`: every command registered
        return load_app([])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
