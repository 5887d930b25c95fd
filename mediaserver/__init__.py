"""Self-hosted AI voice media server."""

__version__ = "0.1.0"
