"""Settings read from the environment, one prefix per service.

A settings class is a dataclass whose fields carry their defaults and, in
``metadata["doc"]``, a sentence that `describe()` prints. ``load(Cls, "LUMEN_EMBEDDINGS")``
reads ``LUMEN_EMBEDDINGS_PORT`` for the field ``port`` and so on; a value that
does not parse fails at start-up with the variable's name.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")  # a settings dataclass

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def setting(default: Any, doc: str) -> Any:
    """A settings field with its default and one line of documentation."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"doc": doc})
    return dataclasses.field(default=default, metadata={"doc": doc})


def database_url(stored: str, folder_field: str) -> Any:
    """The ``database_url`` field of a service that keeps ``stored`` in SQLite under ``folder_field`` unless
    it names a PostgreSQL database (the embeddings' collections, vision's face galleries)."""
    return setting(
        "",
        f"postgresql://... to keep {stored} in PostgreSQL, shared by every replica (from a Secret); "
        f"empty keeps them in SQLite under {folder_field} (one replica).",
    )


def _parse(raw: str, kind: Any, name: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if raw == "":
            return None
        return _parse(raw, args[0], name)
    if kind is bool:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{name}={raw!r} is not a boolean (use true/false)")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a {kind.__name__}") from None
    if origin is list:
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def load(cls: type[T], prefix: str, environ: typing.Mapping[str, str] | None = None) -> T:
    """Build ``cls`` from ``{prefix}_{FIELD}`` variables, falling back to defaults."""
    env = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        name = f"{prefix}_{field.name.upper()}"
        if name in env:
            values[field.name] = _parse(env[name], hints[field.name], name)
    return cls(**values)


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise TypeError(f"setting {field.name} has no default")  # setting() always gives one


def describe(cls: type, prefix: str) -> str:
    """One line per variable: name, default and documentation."""
    lines = []
    for field in dataclasses.fields(cls):
        default = _default(field)
        lines.append(f"{prefix}_{field.name.upper()} (default {default!r}): {field.metadata.get('doc', '')}")
    return "\n".join(lines)


@dataclasses.dataclass
class ServerSettings:
    """Settings every lumen gRPC server shares; services subclass it."""

    host: str = setting(
        "127.0.0.1",
        "Interface to listen on: loopback by default (make run, tools/suite.py); the container images set "
        "0.0.0.0, reached through the compose network or the pod network and its NetworkPolicy.",
    )
    port: int = setting(0, "TCP port; 0 picks a free one (tests). Each service sets its own default.")
    grace_period_s: float = setting(
        20.0, "On SIGTERM, seconds in-flight calls get to finish before they are cancelled."
    )
    max_message_bytes: int = setting(32 * 1024 * 1024, "Largest gRPC message received or sent, in bytes (serialized).")
    max_concurrent_rpcs: int = setting(
        1024,
        "Calls served at once (health and reflection aside); more are shed at once with RESOURCE_EXHAUSTED "
        "and RetryInfo. 0 means no limit.",
    )
    max_request_bytes_in_flight: int = setting(
        256 * 1024 * 1024,
        "Request bytes the calls being served may hold together (a stream: its latest message); a call past "
        "it is shed with RESOURCE_EXHAUSTED and RetryInfo. 0 means no limit.",
    )
    shed_retry_after_s: float = setting(0.5, "The retry delay a shed call's RetryInfo suggests, in seconds.")
    stream_window_bytes: int = setting(
        1024 * 1024,
        "HTTP/2 flow-control window of each call, in bytes, fixed (gRPC's adaptive window is off): the most "
        "of a request body received before the server reads it, so a call refused on its metadata (no key, "
        "shed) costs at most this much. 1 MiB moves about 1 GB/s per call at 1 ms round trip.",
    )
    log_level: str = setting("INFO", "Python logging level.")
    log_format: str = setting("text", "'text' for humans or 'json' for one JSON object per line.")
    metrics_port: int = setting(0, "Port of the Prometheus /metrics endpoint; 0 turns it off.")
    otlp_endpoint: str = setting(
        "",
        "OTLP/gRPC endpoint (e.g. http://otel-collector:4317) that receives this server's trace spans. "
        "Empty falls back to OTEL_EXPORTER_OTLP_ENDPOINT; both empty turn tracing off.",
    )
    reflection: bool = setting(True, "Serve gRPC server reflection (grpc.reflection.v1alpha).")
    tls_cert_file: str = setting("", "PEM certificate chain of this server; set with tls_key_file to serve TLS only.")
    tls_key_file: str = setting("", "PEM private key of tls_cert_file.")
    tls_client_ca_file: str = setting(
        "", "PEM CA bundle; when set (with TLS on), clients must present a certificate it signed (mTLS)."
    )


@dataclasses.dataclass
class ModelServerSettings(ServerSettings):
    """Settings of a model service (nlp, vision, embeddings)."""

    device: str = setting(
        "cpu",
        "'cpu' or 'cuda:N'. Only that GPU is made visible to torch and TensorFlow in this process.",
    )
    model_repository: str = setting(
        "", "Folder of model directories (each with model.json). Empty uses var/models/<service>."
    )
    models: list[str] = setting(
        [], "Comma-separated model names to load at start; empty loads every model in the repository."
    )
    cache_dir: str = setting(
        "",
        "Writable folder for the libraries' caches (Hugging Face, torch, matplotlib, numba, Keras): sets "
        "HF_HOME, MPLCONFIGDIR and the like unless already set. Empty leaves their defaults (under $HOME).",
    )
    torch_threads: int = setting(0, "Intra-op threads for torch; 0 keeps torch's default.")
    backend_token_file: str = setting(
        "",
        "File (e.g. a mounted Secret) with the token the gateway must send on every call but health and "
        "reflection (metadata x-lumen-backend-token); others get UNAUTHENTICATED. Empty: no token needed "
        "(use mTLS via tls_client_ca_file, or the network policy alone).",
    )
