"""Settings of the gateway (environment prefix LUMEN_GATEWAY_)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import ServerSettings, setting


@dataclass
class GatewaySettings(ServerSettings):
    port: int = setting(50051, "TCP port clients call.")
    nlp_address: str = setting(
        "localhost:50052", "nlp service target; use dns:///nlp:50052 with a headless Service to balance replicas."
    )
    vision_address: str = setting("localhost:50053", "vision service target.")
    embeddings_address: str = setting("localhost:50054", "embeddings service target.")
    default_timeout_s: float = setting(
        30.0, "Deadline given to a backend call when the client sent none (generation streams excepted)."
    )
    retry_attempts: int = setting(3, "Attempts (first included) of idempotent calls that get UNAVAILABLE.")
