"""Entry point of the `filmqnn` console command: imports every command module."""

from filmqnn.cli import dsp_pack_command, explore_command, quant_commands  # noqa: F401
from filmqnn.cli.app import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
