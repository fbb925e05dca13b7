"""Entry point of the `filmqnn` console command: imports every command module."""

from filmqnn.cli import (  # noqa: F401
    deploy_commands,
    dsp_pack_command,
    explore_command,
    quant_commands,
)
from filmqnn.cli.app import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
