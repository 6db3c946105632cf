"""lumen: AI models as a service.

This package is the Python SDK (`lumen.Client`, `lumen.AsyncClient`; `lumen.errors` for what
they raise), the CLI (`lumen.cli`) and the generated protobuf/gRPC stubs (`lumen.<domain>.v1`,
made by `make protos`).
"""

from lumen.aio import AsyncClient
from lumen.client import Client
from lumen.errors import LumenError
from lumen.transport import Tls

__all__ = ["AsyncClient", "Client", "LumenError", "Tls"]
