"""lumen: AI models as a service.

This package is the Python SDK (`lumen.client`), the CLI (`lumen.cli`) and the
generated protobuf/gRPC stubs (`lumen.<domain>.v1`, made by `make protos`).
"""

from lumen.client import Client

__all__ = ["Client"]
