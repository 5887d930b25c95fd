"""Registers the `ms-fuzz` hypothesis profile (deadline, health checks) that `support.budget`
builds each target's settings from; see `support.py` for MS_FUZZ_EXAMPLES and MS_FUZZ_DEADLINE_MS."""

from tests.fuzz import support  # noqa: F401  (registers the profile before any target runs)
