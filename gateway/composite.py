"""Table-driven composite calls: each feature is a spec, one runner runs them.

A feature (AnalyzeText's language, AnnotateImage's labels...) is one backend
call about the caller's single item, sent as a batch of one: a spec says which
backend and method, how to build its request, and which part fields to take from
the reply's one result. The runner runs the requested features in parallel under
the call's budget (fanout.run_parts cancels the siblings still running when the
deadline or the caller's cancellation ends the call), restates a per-item status
about the batch ("texts[0]") in the caller's terms ("text"), and fills the
response: each part, and the usage of the parts that succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc.aio
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from gateway.fanout import OK, renamed, run_parts
from gateway.limits import add_usage
from gateway.scope import Scope
from lumen.common.v1 import common_pb2
from shared import tracing
from shared.errors import InvalidArgument

# A feature-type enum of the generated stubs (an int NewType each).
K = TypeVar("K", bound=int)


@dataclass(frozen=True)
class Feature:
    field: str  # response field holding the part
    part: type[Message]  # the part message (status, model, fields)
    backend: str  # "nlp", "vision", "embeddings"
    stub: Callable[[grpc.aio.Channel], Any]  # the backend's stub class
    method: str  # the stub's method
    request: Callable[[Any, Any], Message]  # (caller's request, its feature) -> backend request
    fields: Callable[[Any, Any], dict[str, Any]]  # (the reply's one result, feature) -> part fields
    item: Callable[[Any], Any] = lambda reply: reply.results[0]  # the reply's one result
    max_results: int = 0  # largest max_results accepted; 0: the field is ignored


@dataclass(frozen=True)
class Part:
    """One feature's answer: its part message (status set), the backend's usage, and its one result."""

    message: Any  # a part proto
    usage: common_pb2.Usage
    item: Any

    @property
    def ok(self) -> bool:
        return bool(self.message.status.code == code_pb2.OK)


def check_features(features: Any, known: Mapping[K, Feature], most: int) -> None:
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


async def _ask(
    scope: Scope, spec: Feature, request: Any, feature: Any, rename: tuple[str, str], timeout_s: float
) -> Part:
    stub = spec.stub(scope.channel(spec.backend))
    with tracing.client_span(f"{spec.backend}/{spec.method}", **{"lumen.part": spec.field}):
        call = getattr(stub, spec.method)
        reply = await call(
            spec.request(request, feature), timeout=timeout_s, metadata=tracing.with_context(scope.metadata)
        )
    item = spec.item(reply)
    status = getattr(item, "status", OK)  # batch replies carry a status per item; Embed fails whole
    if status.code != code_pb2.OK:
        return Part(spec.part(status=renamed(status, *rename)), reply.usage, item)
    return Part(spec.part(status=OK, model=reply.model, **spec.fields(item, feature)), reply.usage, item)


async def run_features(
    scope: Scope,
    request: Any,
    features: Iterable[Any],
    specs: Mapping[K, Feature],
    response: Any,
    rename: tuple[str, str],
) -> list[Part]:
    """Run the requested features, fill ``response`` with their parts and usage; the parts that answered."""

    def part(feature: Any) -> Callable[[float], Coroutine[Any, Any, Part]]:
        return lambda timeout_s: _ask(scope, specs[feature.type], request, feature, rename, timeout_s)

    wanted = {specs[f.type].field: part(f) for f in features}
    results = await run_parts(wanted, scope.budget, rename)
    by_field = {spec.field: spec for spec in specs.values()}
    answered: list[Part] = []
    for field, result in results.items():
        target = getattr(response, field)
        if isinstance(result, status_pb2.Status):
            target.CopyFrom(by_field[field].part(status=result))
            continue
        target.CopyFrom(result.message)
        answered.append(result)
        if result.ok:
            add_usage(response.usage, result.usage)
    response.usage.SetInParent()  # present (zero) even when nothing succeeded
    return answered
