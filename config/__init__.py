"""Default configuration and sample SWML documents (data only)."""

from pathlib import Path

CONFIG_DIR = Path(__file__).parent
