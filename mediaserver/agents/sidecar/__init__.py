"""The `ai_sidecar` verb: an observer LLM on a bridged call that streams advice events (seed 002)."""

from mediaserver.agents.sidecar.config import SidecarConfig, SidecarConfigError
from mediaserver.agents.sidecar.engine import SidecarEngine
from mediaserver.agents.sidecar.runner import SidecarManager, SidecarServices

__all__ = ["SidecarConfig", "SidecarConfigError", "SidecarEngine", "SidecarManager", "SidecarServices"]
