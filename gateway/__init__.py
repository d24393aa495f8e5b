"""turnroute's HTTP edge: the FastAPI app, backends, logs and the CLI."""

__version__ = "0.2.0"
