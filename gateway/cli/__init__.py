"""The `turnroute` command line (argparse, lazy imports: the status line must start fast)."""

from turnroute.gateway.cli.main import main

__all__ = ["main"]
