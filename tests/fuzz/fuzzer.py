"""A reflection-driven fuzzer for lumen's gRPC servers.

It asks a server for its services by reflection, builds every request type
from the descriptors it gets back, and calls every method with bad input:
random structured messages (huge and empty fields, NaN and infinities,
out-of-range enums, deep nesting, long repeated fields), their wire bytes
mutated (truncated, bytes flipped, a field sent with the wrong wire type, a
string field holding bytes that are not UTF-8), plain garbage, and request
streams that are empty, long or carry a bad chunk. A call fails the run when it
answers INTERNAL or UNKNOWN; the server fails it when it exits or its health
check stops answering SERVING (a hang).

`python -m tests.fuzz.fuzzer --calls 200` starts the suite (models from
var/models) and fuzzes every server; tests/fuzz/test_fuzz.py runs a short budget.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import struct
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

FAILING = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
# Found by this fuzzer and reported to their owners, not fixed yet: their INTERNAL answers
# are printed as KNOWN (never hidden) but do not fail the run. Remove an entry with its fix.
KNOWN_INTERNAL: dict[str, str] = {}
# Mutations that would take state away from other tests sharing the suite are
# still fuzzed, but never with names that exist (random names only).
MAX_RESPONSES = 200
# Streams that stay open by design: a short deadline, and DEADLINE_EXCEEDED is their normal end.
OPEN_STREAMS = {"/grpc.health.v1.Health/Watch": 0.5}


@dataclass(frozen=True)
class Sizes:
    """How big "huge" is: short runs stay cheap, long runs reach the limits."""

    huge_text: int = 20_000
    many: int = 40
    stream_chunks: int = 20


SHORT = Sizes()
LONG = Sizes(huge_text=200_000, many=400, stream_chunks=100)

WEIRD_TEXT = [
    "",
    " ",
    "a",
    "\x00",
    "\u202e\u0301\ufeff",
    "🦀" * 7,
    "../../../etc/passwd",
    "%s%n%x",
    "not good " * 300,
    "\n\t\r" * 50,
    "Ω≈ç√∫",
    "-1",
    "NaN",
    "*",
]
INTS = [0, 1, -1, 2, 7, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 10**9]
UINTS = [0, 1, 2, 7, 2**32 - 1, 2**64 - 1, 10**9]
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 1e-320, 3.4e38]
PNG_HEADER = b"\x89PNG\r\n\x1a\n"
WORDS = ["the", "movie", "was", "not", "good", "great", "dog", "cat", "Paris", "is", "bonjour", "king", "happy"]
# Fields a plausible request leaves empty: the server's defaults (models, pages) are what exist.
LEFT_EMPTY = ("name", "version", "id", "token", "collection", "gallery", "person", "model", "ids", "filter")


def _tiny_png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


TINY_PNG = _tiny_png()


class Generator:
    """Random values for each field kind, seeded so a failure can be replayed."""

    def __init__(self, seed: int, sizes: Sizes) -> None:
        self.rng = random.Random(seed)
        self.sizes = sizes
        # Plausible requests (ordinary words, ids and names left empty, small counts)
        # get past validation to the models, where one bad value is then planted.
        self.plausible = False

    def plausible_message(self, message: Any) -> Any:
        self.plausible = True
        try:
            self.fill(message, everything=True)
        finally:
            self.plausible = False
        fields = [fd for fd in message.DESCRIPTOR.fields if fd.type != FieldDescriptor.TYPE_MESSAGE]
        if fields and self.rng.random() < 0.7:
            self._set(message, self.rng.choice(fields), 0)  # the one bad value
        return message

    def text(self) -> str:
        if self.plausible:
            return " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(1, 12)))
        r = self.rng.random()
        if r < 0.45:
            return self.rng.choice(WEIRD_TEXT)
        if r < 0.75:
            return "".join(self.rng.choice("abc xyz.,!?") for _ in range(self.rng.randint(1, 60)))
        if r < 0.9:
            return (
                "".join(chr(self.rng.randint(1, 0x2FFFF)) for _ in range(self.rng.randint(1, 200)))
                .encode("utf-8", "ignore")
                .decode("utf-8", "ignore")
            )
        return self.rng.choice(["x", "not good ", "word ", "é"]) * self.rng.randint(1, self.sizes.huge_text // 4)

    def blob(self) -> bytes:
        r = self.rng.random()
        if r < 0.2:
            return b""
        if r < 0.5:
            return self.rng.randbytes(self.rng.randint(1, 300))
        if r < 0.8:
            return PNG_HEADER + self.rng.randbytes(self.rng.randint(0, 300))
        if r < 0.9:
            return b"\xff\xd8\xff" + self.rng.randbytes(self.rng.randint(0, 300))  # a JPEG that stops
        return self.rng.randbytes(self.rng.randint(1, self.sizes.huge_text))

    def count(self) -> int:
        if self.plausible:
            return self.rng.randint(1, 3)
        r = self.rng.random()
        if r < 0.25:
            return 0
        if r < 0.7:
            return self.rng.randint(1, 3)
        if r < 0.93:
            return self.rng.randint(4, 12)
        return self.rng.randint(13, self.sizes.many)

    def scalar(self, fd: FieldDescriptor) -> Any:
        t = fd.type
        if self.plausible:
            if t == FieldDescriptor.TYPE_STRING:
                return "" if fd.name.endswith(LEFT_EMPTY) else self.text()
            if t == FieldDescriptor.TYPE_BYTES:
                return TINY_PNG
            if t == FieldDescriptor.TYPE_ENUM:
                return self.rng.choice([v.number for v in fd.enum_type.values])
            if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
                return self.rng.choice([0.0, 0.5, 1.0])
            if t == FieldDescriptor.TYPE_BOOL:
                return self.rng.random() < 0.5
            return self.rng.choice([0, 1, 3])
        if t == FieldDescriptor.TYPE_STRING:
            return self.text()
        if t == FieldDescriptor.TYPE_BYTES:
            return self.blob()
        if t == FieldDescriptor.TYPE_BOOL:
            return self.rng.random() < 0.5
        if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            value = self.rng.choice(FLOATS) if self.rng.random() < 0.7 else self.rng.uniform(-1e6, 1e6)
            if (
                t == FieldDescriptor.TYPE_FLOAT
                and abs(value) > 3.4e38
                and value == value
                and abs(value) != float("inf")
            ):
                value = float("inf")  # a float32 field cannot hold 1e308; send its infinity
            return value
        if t == FieldDescriptor.TYPE_ENUM:
            numbers = [v.number for v in fd.enum_type.values]
            return self.rng.choice([*numbers, *numbers, 999, -1, 2**31 - 1])
        if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
            return self.rng.choice([v for v in UINTS if v < 2**32])
        if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
            return self.rng.choice(UINTS)
        if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
            return self.rng.choice([v for v in INTS if -(2**31) <= v < 2**31])
        return self.rng.choice(INTS)

    def fill(self, message: Any, depth: int = 0, sparse: bool = False, everything: bool = False) -> Any:
        """Set a random subset of ``message``'s fields: all of them sometimes, or (``sparse``)
        one or two, so that the rest keeps its defaults and the call reaches the model."""
        fields = list(message.DESCRIPTOR.fields)
        if sparse:
            chosen = self.rng.sample(fields, min(len(fields), self.rng.randint(1, 2)))
        elif everything or self.rng.random() < 0.3:
            chosen = fields
        else:
            chosen = [fd for fd in fields if self.rng.random() < 0.6]
        for fd in chosen:
            self._set(message, fd, depth, sparse)
        return message

    def _set(self, message: Any, fd: FieldDescriptor, depth: int, sparse: bool = False) -> None:
        is_message = fd.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP)
        if is_message and fd.message_type.GetOptions().map_entry:
            target = getattr(message, fd.name)
            key_fd, value_fd = fd.message_type.fields_by_name["key"], fd.message_type.fields_by_name["value"]
            for _ in range(self.count()):
                key = self.scalar(key_fd)
                if value_fd.type == FieldDescriptor.TYPE_MESSAGE:
                    if depth < 3:
                        self.fill(target[key], depth + 1, sparse)
                else:
                    target[key] = self.scalar(value_fd)
            return
        if fd.is_repeated:
            target = getattr(message, fd.name)
            n = self.count()
            if is_message:
                if depth < 3:
                    for _ in range(n):
                        self.fill(target.add(), depth + 1, sparse)
            else:
                target.extend(self.scalar(fd) for _ in range(n))
            return
        if is_message:
            if depth < 4:
                self.fill(getattr(message, fd.name), depth + 1, sparse)
                getattr(message, fd.name).SetInParent()
            return
        setattr(message, fd.name, self.scalar(fd))

    def mutate(self, raw: bytes, descriptor: Descriptor) -> bytes:
        """Wire-level damage that a typed client cannot produce."""
        choice = self.rng.randrange(6)
        strings = [f.number for f in descriptor.fields if f.type == FieldDescriptor.TYPE_STRING]
        numbers = [f.number for f in descriptor.fields] or [1]
        if choice == 0 and raw:
            return raw[: self.rng.randrange(len(raw))]
        if choice == 1 and raw:
            data = bytearray(raw)
            for _ in range(self.rng.randint(1, 8)):
                data[self.rng.randrange(len(data))] = self.rng.randrange(256)
            return bytes(data)
        if choice == 2 and strings:  # a string field that is not UTF-8
            bad = b"\xff\xfe\xc3\x28"
            return raw + _key(self.rng.choice(strings), 2) + _varint(len(bad)) + bad
        if choice == 3:  # a known field number with another wire type
            fd_number = self.rng.choice(numbers)
            return raw + self.rng.choice(
                [
                    _key(fd_number, 0) + _varint(5),
                    _key(fd_number, 5) + struct.pack("<f", 1.0),
                    _key(fd_number, 2) + b"\x03ab",
                ]
            )
        if choice == 4:  # an unknown field, a huge declared length
            return raw + _key(9999, 2) + _varint(2**31)
        return self.rng.randbytes(self.rng.randint(0, 64))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint((number << 3) | wire_type)


@dataclass
class Method:
    service: str
    descriptor: MethodDescriptor
    request_class: Any

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.descriptor.name}"


def discover(address: str) -> list[Method]:
    """Every method of every service the server at ``address`` reflects."""
    with grpc.insecure_channel(address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(database)
        methods = []
        for name in database.get_services():
            service = pool.FindServiceByName(name)
            for method in service.methods:
                request_class = message_factory.GetMessageClass(method.input_type)
                methods.append(Method(name, method, request_class))
    return methods


@dataclass
class Report:
    """Codes answered, per method; failures with a replayable description."""

    codes: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    # The payloads of the first failing calls (bytes, or a list of stream chunks), to replay.
    failing_payloads: list[tuple[str, Any]] = field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0

    def add(self, method: str, code: grpc.StatusCode, detail: str, case: str, payload: Any = None) -> None:
        self.calls += 1
        self.codes[method][code.name] += 1
        if code in FAILING and method in KNOWN_INTERNAL:
            self.known.append(f"{method} -> {code.name}: {KNOWN_INTERNAL[method]}")
        elif code in FAILING:
            self.failures.append(f"{method} -> {code.name} {detail[:200]!r} for {case}")
            if len(self.failing_payloads) < 20:
                self.failing_payloads.append((method, payload))

    def total(self) -> Counter:
        out: Counter = Counter()
        for counts in self.codes.values():
            out.update(counts)
        return out


class Fuzzer:
    def __init__(self, address: str, seed: int = 0, sizes: Sizes = SHORT, deadline_s: float = 10.0) -> None:
        self.address = address
        self.gen = Generator(seed, sizes)
        self.sizes = sizes
        self.deadline_s = deadline_s
        self.methods = discover(address)

    def request_bytes(self, method: Method) -> tuple[bytes, str]:
        """One request, serialized, and what kind of case it is."""
        r = self.gen.rng.random()
        if r < 0.25:
            return self.gen.plausible_message(method.request_class()).SerializeToString(), "plausible"
        r = self.gen.rng.random()
        sparse = r < 0.35
        message = self.gen.fill(method.request_class(), sparse=sparse)
        raw = message.SerializeToString()
        if r < 0.65:
            return raw, "sparse" if sparse else "structured"
        if r < 0.75:
            return method.request_class().SerializeToString(), "empty"
        return self.gen.mutate(raw, method.descriptor.input_type), "mutated"

    def stream(self, method: Method) -> tuple[list[bytes], str]:
        r = self.gen.rng.random()
        if r < 0.1:
            return [], "empty stream"
        n = self.gen.rng.randint(1, 4) if r < 0.7 else self.gen.rng.randint(5, self.sizes.stream_chunks)
        chunks = [self.request_bytes(method)[0] for _ in range(n)]
        return chunks, f"stream of {n}"

    async def call(self, channel: grpc.aio.Channel, method: Method, report: Report) -> None:
        d = method.descriptor
        if d.client_streaming:
            payload, case = self.stream(method)
        else:
            payload, case = self.request_bytes(method)
        code, detail = grpc.StatusCode.OK, ""
        deadline = OPEN_STREAMS.get(method.path, self.deadline_s)
        try:
            if d.client_streaming and d.server_streaming:
                call = channel.stream_stream(method.path)(iter(payload), timeout=deadline)
                await _drain(call)
            elif d.client_streaming:
                await channel.stream_unary(method.path)(iter(payload), timeout=deadline)
            elif d.server_streaming:
                call = channel.unary_stream(method.path)(payload, timeout=deadline)
                await _drain(call)
            else:
                await channel.unary_unary(method.path)(payload, timeout=deadline)
        except grpc.aio.AioRpcError as exc:
            code, detail = exc.code(), exc.details() or ""
        sample = payload if isinstance(payload, bytes) else b"".join(payload[:2])
        report.add(method.path, code, detail, f"{case} {sample[:80]!r} ({len(sample)} bytes)", payload)

    async def run(self, calls_per_method: int, budget_s: float, alive: Any = None) -> Report:
        """Round-robin over the methods until each had ``calls_per_method`` calls or the budget is spent;
        after every round the server must still be alive and SERVING."""
        report = Report()
        start = time.monotonic()
        async with grpc.aio.insecure_channel(self.address, options=_channel_options()) as channel:
            for _ in range(calls_per_method):
                for method in self.methods:
                    await self.call(channel, method, report)
                await self.check_alive(channel, report, alive)
                if time.monotonic() - start > budget_s:
                    break
        report.seconds = time.monotonic() - start
        return report

    async def check_alive(self, channel: grpc.aio.Channel, report: Report, alive: Any) -> None:
        if alive is not None and not alive():
            report.failures.append(f"{self.address}: the server process exited")
            raise RuntimeError(report.failures[-1])
        health = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            serving = reply.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.aio.AioRpcError as exc:
            serving = False
            report.failures.append(f"{self.address}: health check failed with {exc.code().name}")
        if not serving:
            report.failures.append(f"{self.address}: health is not SERVING (a hang or a crash)")
            raise RuntimeError(report.failures[-1])


def _channel_options() -> list[tuple[str, Any]]:
    return [("grpc.max_send_message_length", 64 * 1024 * 1024), ("grpc.max_receive_message_length", 64 * 1024 * 1024)]


async def _drain(call: Any) -> None:
    n = 0
    async for _ in call:
        n += 1
        if n >= MAX_RESPONSES:
            call.cancel()
            return


def fuzz_server(address: str, calls: int, budget_s: float, seed: int, sizes: Sizes, alive: Any = None) -> Report:
    fuzzer = Fuzzer(address, seed, sizes)
    return asyncio.run(fuzzer.run(calls, budget_s, alive))


def summary(name: str, report: Report) -> Iterator[str]:
    per_method = [sum(c.values()) for c in report.codes.values()]
    total = report.total()
    yield (
        f"{name}: {len(report.codes)} methods, {report.calls} calls in {report.seconds:.0f}s "
        f"(min {min(per_method, default=0)} per method), " + ", ".join(f"{code} {n}" for code, n in total.most_common())
    )
    yield from (f"  FAIL {line}" for line in report.failures)
    yield from (f"  KNOWN {line}" for line in sorted(set(report.known)))


def main() -> None:
    from tools.suite import COMPONENTS, ROOT, free_port, start_suite

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per method on every server")
    parser.add_argument("--budget", type=float, default=3600.0, help="seconds per server at most")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--servers", nargs="*", choices=list(COMPONENTS), help="fuzz only these (default: all)")
    args = parser.parse_args()
    env = {
        f"LUMEN_{n.upper()}_MODEL_REPOSITORY": str(ROOT / "var" / "models" / n) for n in ("nlp", "vision", "embeddings")
    }
    # Models that load in seconds: the LLM and the trained ones are fuzzed through their services' other models.
    log_dir = ROOT / "build" / "fuzz"
    log_dir.mkdir(parents=True, exist_ok=True)
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        env["LUMEN_EMBEDDINGS_COLLECTIONS_DIR"] = f"{scratch}/collections"
        env["LUMEN_VISION_GALLERIES_DIR"] = f"{scratch}/galleries"
        env["LUMEN_TRAINING_DATA_DIR"] = f"{scratch}/training"
        # Free ports for every component: the defaults may be taken by another running suite.
        suite = start_suite(ports={n: free_port() for n in COMPONENTS}, env=env, log_dir=log_dir)
        failed = False
        try:
            for name, component in suite.components.items():
                if args.servers and name not in args.servers:
                    continue
                started = time.monotonic()
                report = fuzz_server(
                    component.address,
                    args.calls,
                    args.budget,
                    args.seed,
                    LONG,
                    lambda c=component: c.process.poll() is None,
                )
                for line in summary(name, report):
                    print(line, flush=True)
                per_method = {path: sum(c.values()) for path, c in report.codes.items()}
                for path, n in sorted(per_method.items()):
                    codes = ", ".join(f"{code} {k}" for code, k in report.codes[path].most_common())
                    print(f"    {path}: {n} calls ({codes})", flush=True)
                print(f"  {name} took {time.monotonic() - started:.0f}s", flush=True)
                failed |= bool(report.failures)
        finally:
            suite.stop()
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
