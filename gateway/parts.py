"""Feature lists of composite requests and the parts of their responses."""

from __future__ import annotations

from typing import Any

from google.rpc import code_pb2

from gateway.limits import add_usage
from shared.errors import InvalidArgument


def check_features(features: Any, known: dict[int, Any], most: int) -> None:
    """1 to ``most`` distinct, known feature types; max_results within each type's range."""
    if not 1 <= len(features) <= most:
        raise InvalidArgument("features", f"must hold 1 to {most} features, got {len(features)}")
    seen: dict[int, int] = {}
    for i, feature in enumerate(features):
        spec = known.get(feature.type)
        if spec is None:
            raise InvalidArgument(f"features[{i}].type", "must be set to a known feature type")
        if feature.type in seen:
            raise InvalidArgument(f"features[{i}].type", f"repeats features[{seen[feature.type]}].type")
        seen[feature.type] = i
        if spec.max_results and feature.max_results > spec.max_results:
            raise InvalidArgument(
                f"features[{i}].max_results", f"must be 0 (default) to {spec.max_results}, got {feature.max_results}"
            )


def fill_parts(response: Any, results: dict[str, Any], parts: dict[str, type]) -> None:
    """Set each requested part (its result, or its failure status) and sum the usage of those that succeeded."""
    for field, result in results.items():
        if isinstance(result, tuple):
            message, usage = result
            getattr(response, field).CopyFrom(message)
            if message.status.code == code_pb2.OK:
                add_usage(response.usage, usage)
        else:
            getattr(response, field).CopyFrom(parts[field](status=result))
    response.usage.SetInParent()  # present (zero) even when nothing succeeded
