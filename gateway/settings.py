"""Settings of the gateway (environment prefix LUMEN_GATEWAY_).

TLS towards clients uses the shared server fields (LUMEN_GATEWAY_TLS_CERT_FILE,
_TLS_KEY_FILE, _TLS_CLIENT_CA_FILE); the backend_tls_* fields below secure the
gateway's own channels to the model services.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import ServerSettings, setting


@dataclass
class GatewaySettings(ServerSettings):
    port: int = setting(50051, "TCP port clients call.")
    # Relays are cheap (bytes in, bytes out); each backend caps its own work.
    max_concurrent_rpcs: int = setting(
        2048, "Calls relayed at once (health aside); more are shed with RESOURCE_EXHAUSTED and RetryInfo. 0: no limit."
    )
    nlp_address: str = setting(
        "localhost:50052", "nlp service target; use dns:///nlp:50052 with a headless Service to balance replicas."
    )
    vision_address: str = setting("localhost:50053", "vision service target.")
    embeddings_address: str = setting("localhost:50054", "embeddings service target.")
    tabular_address: str = setting("localhost:50056", "tabular service target.")
    training_address: str = setting("localhost:50055", "training service target.")
    default_timeout_s: float = setting(
        30.0, "Deadline given to a backend call when the client sent none (generation streams excepted)."
    )
    retry_attempts: int = setting(3, "Attempts (first included) of idempotent calls that get UNAVAILABLE.")
    backend_keepalive_s: int = setting(
        20,
        "Seconds between keepalive pings on the backend channels; at least the backends' minimum ping "
        "interval (10 s for lumen services; 300 s for stock gRPC servers), or the backends drop the "
        "connection with GOAWAY too_many_pings.",
    )
    keys_file: str = setting(
        "",
        "JSON file of API keys (hashes only; see `python -m gateway.keys`). Empty turns keys off: every call "
        "is accepted and counted under the key id 'local' (local development; deploy/ sets a file).",
    )
    redis_url: str = setting(
        "",
        "redis://... to keep rate limits, quotas and usage in Redis, shared by every gateway replica (from a "
        "Secret); empty keeps them in this process's memory (one replica: N replicas would give N times a quota).",
    )
    keys_reload_s: float = setting(5.0, "How often the keys file is checked for changes (new or revoked keys).")
    deadline_margin_ms: int = setting(
        100,
        "Composite calls answer this long before the caller's deadline (at most a fifth of the time left), "
        "so that the parts that finished still reach the caller.",
    )
    admin_methods: list[str] = setting(
        [
            "CollectionService/DeleteCollection",
            "FaceRecognitionService/DeleteGallery",
            "FaceRecognitionService/DeletePerson",
        ],
        "Forwarded methods (Service/Method, comma-separated) only admin keys may call; others get "
        "PERMISSION_DENIED. Empty opens them to every key allowed the service. (LoadModel/UnloadModel are "
        "not forwarded: they reach a model service directly, behind its backend token or mTLS.)",
    )
    backend_token_file: str = setting(
        "",
        "File (e.g. a mounted Secret) with the token sent to the model services on every call "
        "(x-lumen-backend-token); set the same file as their LUMEN_<SERVICE>_BACKEND_TOKEN_FILE.",
    )
    backend_tls_ca_file: str = setting(
        "", "PEM CA bundle that signs the backends' certificates; set to call the backends over TLS."
    )
    backend_tls_cert_file: str = setting("", "PEM client certificate the gateway presents to backends (mTLS).")
    backend_tls_key_file: str = setting("", "PEM private key of backend_tls_cert_file.")
    backend_tls_server_name: str = setting(
        "", "Name to verify in the backends' certificates instead of the target's host name (e.g. 'lumen-backend')."
    )
