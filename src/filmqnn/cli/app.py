"""The shared Typer application that every CLI module registers its commands on."""

import json
import sys
from typing import Any

import typer

app = typer.Typer(
    name="filmqnn",
    help="Intra-layer mixed-precision quantization and FPGA accelerators (FILM-QNN).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def emit_json(obj: Any) -> None:
    """Print one machine-readable JSON object on stdout (progress goes to stderr)."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 2) -> None:
    """Stop the command with a clear error message on stderr and a non-zero exit code."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
