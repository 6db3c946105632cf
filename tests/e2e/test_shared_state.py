"""Many replicas, one truth (real processes, real PostgreSQL and Redis).

Two gateways, two embeddings replicas and two vision replicas share one
PostgreSQL (collections, galleries) and one Redis (rate limits, quotas, usage).
Each gateway reaches both replicas of a service through round_robin
(``ipv4:a,b``, as ``dns:///`` does over a headless Service).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.protobuf import struct_pb2

from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as epb
from lumen.embeddings.v1 import embeddings_pb2_grpc as epb_grpc
from lumen.gateway.v1 import gateway_pb2 as gpb
from lumen.gateway.v1 import gateway_pb2_grpc as gpb_grpc
from lumen.vision.v1 import vision_pb2 as vpb
from lumen.vision.v1 import vision_pb2_grpc as vpb_grpc
from tests.gateway.conftest import add_key, setup_repository
from tests.vision import samples
from tools.state_servers import PostgresServer, RedisServer
from tools.suite import Suite, free_port

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

QUOTA = 12


@dataclass
class Shared:
    postgres: PostgresServer
    redis: RedisServer
    embeddings: list[Suite]
    vision: list[Suite]
    gateways: list[Suite]
    secrets: dict[str, str]
    logs: Path

    def address(self, kind: str, i: int) -> str:
        return getattr(self, kind)[i].address(kind if kind != "gateways" else "gateway")

    def auth(self, key: str = "writer") -> list[tuple[str, str]]:
        return [("x-api-key", self.secrets[key])]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    from services.vision.setup_models import write_face_models

    root = tmp_path_factory.mktemp("shared-state")
    embeddings_models = setup_repository("embeddings", root / "models")
    write_face_models(root / "models" / "vision")
    postgres, redis = PostgresServer(), RedisServer(root / "redis")
    postgres.start()
    redis.start()
    keys = root / "keys.json"
    secrets = {
        "writer": add_key(keys, "writer"),
        "metered": add_key(keys, "metered", calls_per_period=QUOTA),
        "limited": add_key(keys, "limited", calls_per_period=100_000),
    }
    state = Shared(postgres, redis, [Suite(), Suite()], [Suite(), Suite()], [Suite(), Suite()], secrets, root)
    try:
        for i in range(2):
            state.embeddings[i].start_component(
                "embeddings",
                free_port(),
                {
                    "LUMEN_EMBEDDINGS_MODEL_REPOSITORY": str(embeddings_models),
                    "LUMEN_EMBEDDINGS_DATABASE_URL": postgres.url,
                    "LUMEN_EMBEDDINGS_COLLECTIONS_DIR": str(root / f"unused-{i}"),
                },
                _log_dir(root, f"embeddings-{i}"),
            )
            state.vision[i].start_component(
                "vision",
                free_port(),
                {
                    "LUMEN_VISION_MODEL_REPOSITORY": str(root / "models" / "vision"),
                    "LUMEN_VISION_DATABASE_URL": postgres.url,
                    "LUMEN_VISION_GALLERIES_DIR": str(root / f"unused-{i}"),
                },
                _log_dir(root, f"vision-{i}"),
            )
        for suite in (*state.embeddings, *state.vision):
            suite.wait_serving(timeout=300)
        targets = {
            kind: "ipv4:" + ",".join(f"127.0.0.1:{s.components[kind].port}" for s in getattr(state, kind))
            for kind in ("embeddings", "vision")
        }
        for i in range(2):
            state.gateways[i].start_component(
                "gateway",
                free_port(),
                {
                    "LUMEN_GATEWAY_EMBEDDINGS_ADDRESS": targets["embeddings"],
                    "LUMEN_GATEWAY_VISION_ADDRESS": targets["vision"],
                    "LUMEN_GATEWAY_NLP_ADDRESS": f"127.0.0.1:{free_port()}",
                    "LUMEN_GATEWAY_KEYS_FILE": str(keys),
                    "LUMEN_GATEWAY_REDIS_URL": redis.url,
                },
                _log_dir(root, f"gateway-{i}"),
            )
        for suite in state.gateways:
            suite.wait_serving()
        yield state
    finally:
        for suite in (*state.gateways, *state.embeddings, *state.vision):
            suite.stop()
        redis.stop()
        postgres.remove()


def _log_dir(root: Path, name: str) -> Path:
    (root / name).mkdir(exist_ok=True)
    return root / name


def tagged(doc_id: str, text: str) -> epb.Document:
    doc = epb.Document(id=doc_id, text=text)
    doc.metadata.update({"tag": doc_id})
    return doc


def by_tag(doc_id: str) -> epb.SearchRequest:
    where = struct_pb2.Struct()
    where.update({"tag": doc_id})
    return epb.SearchRequest(
        collection="notes", vector=common_pb2.Vector(values=[1.0] * 384), top_k=1, filter=where, include_documents=True
    )


def collections(address: str) -> epb_grpc.CollectionServiceStub:
    return epb_grpc.CollectionServiceStub(grpc.insecure_channel(address))


def test_a_document_written_through_one_is_found_through_the_other(shared: Shared) -> None:
    through = [collections(shared.address("gateways", i)) for i in range(2)]
    direct = [collections(shared.address("embeddings", i)) for i in range(2)]
    auth = shared.auth()
    through[0].CreateCollection(epb.CreateCollectionRequest(name="notes"), metadata=auth, timeout=30)
    direct[0].UpsertDocuments(
        epb.UpsertDocumentsRequest(collection="notes", documents=[tagged("cat", "The cat sleeps on the mat.")]),
        timeout=30,
    )
    assert direct[1].Search(by_tag("cat"), timeout=30).hits[0].id == "cat"
    for step in range(4):  # each write through one gateway, the next search through the other
        doc_id = f"doc-{step}"
        through[step % 2].UpsertDocuments(
            epb.UpsertDocumentsRequest(collection="notes", documents=[tagged(doc_id, f"Note number {step}.")]),
            metadata=auth,
            timeout=30,
        )
        for _ in range(2):  # round_robin: both replicas behind the other gateway
            hits = through[1 - step % 2].Search(by_tag(doc_id), metadata=auth, timeout=30).hits
            assert [h.id for h in hits] == [doc_id]
    query = epb.SearchRequest(collection="notes", text="a sleeping cat", top_k=1)
    assert through[1].Search(query, metadata=auth, timeout=30).hits[0].id == "cat"
    counts = [c.GetCollection(epb.GetCollectionRequest(name="notes"), timeout=30).collection for c in direct]
    assert [c.document_count for c in counts] == [5, 5]


def png(pixels) -> common_pb2.Image:  # type: ignore[no-untyped-def]
    return samples.message(samples.encode(pixels))


def test_a_person_enrolled_through_one_is_identified_through_the_other(shared: Shared) -> None:
    direct = [vpb_grpc.FaceRecognitionServiceStub(grpc.insecure_channel(shared.address("vision", i))) for i in (0, 1)]
    via = vpb_grpc.FaceRecognitionServiceStub(grpc.insecure_channel(shared.address("gateways", 1)))
    direct[0].CreateGallery(vpb.CreateGalleryRequest(name="crew"), timeout=60)
    enrolled = direct[0].EnrollPerson(
        vpb.EnrollPersonRequest(
            gallery="crew", person_id="eileen", display_name="Eileen", images=[png(samples.astronaut_face_crop())]
        ),
        timeout=120,
    )
    assert enrolled.enrolled == 1
    request = vpb.IdentifyFacesRequest(gallery="crew", images=[png(samples.astronaut_face_crop(True))])
    assert direct[1].IdentifyFaces(request, timeout=120).results[0].faces[0].candidates[0].person_id == "eileen"
    for _ in range(2):
        faces = via.IdentifyFaces(request, metadata=shared.auth(), timeout=120).results[0].faces
        assert faces[0].candidates[0].person_id == "eileen" and faces[0].candidates[0].match


async def test_a_quota_of_n_calls_is_n_across_both_gateways(shared: Shared) -> None:
    channels = [grpc.aio.insecure_channel(shared.address("gateways", i)) for i in range(2)]
    auth = shared.auth("metered")
    try:

        async def call(i: int) -> grpc.StatusCode:
            stub = epb_grpc.EmbeddingServiceStub(channels[i % 2])
            try:
                await stub.Embed(epb.EmbedRequest(texts=[f"call {i}"]), metadata=auth, timeout=60)
            except grpc.aio.AioRpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

        codes = await asyncio.gather(*(call(i) for i in range(3 * QUOTA)))
        assert codes.count(grpc.StatusCode.OK) == QUOTA
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 2 * QUOTA
        for channel in channels:  # GetUsage answers the same through either gateway
            usage = await gpb_grpc.GatewayServiceStub(channel).GetUsage(gpb.GetUsageRequest(), metadata=auth)
            assert (usage.calls, usage.quota.calls_remaining) == (QUOTA, 0)
            assert usage.usage.input_tokens > 0
    finally:
        for channel in channels:
            await channel.close()


async def _send(
    stub: epb_grpc.CollectionServiceStub, name: str, acked: list[str], enough: asyncio.Event, stop: asyncio.Event
) -> None:
    """Upsert batches back to back; a document counts only once its response arrived."""
    call = 0
    while not stop.is_set():
        docs = [tagged(f"{name}-{call}-{j}", f"{name} wrote batch {call}, document {j}") for j in range(4)]
        try:
            await stub.UpsertDocuments(epb.UpsertDocumentsRequest(collection="notes", documents=docs), timeout=60)
        except grpc.aio.AioRpcError:
            return  # the replica died under this call: not acknowledged
        acked.extend(d.id for d in docs)
        if len(acked) >= 60:
            enough.set()
        call += 1


async def test_kill_9_of_a_replica_during_writes_loses_nothing_acknowledged(shared: Shared) -> None:
    victim, survivor = shared.embeddings[0].components["embeddings"], shared.embeddings[1].components["embeddings"]
    acked: list[str] = []
    enough, stop = asyncio.Event(), asyncio.Event()
    async with (
        grpc.aio.insecure_channel(victim.address) as to_victim,
        grpc.aio.insecure_channel(survivor.address) as to_survivor,
    ):
        stubs = [epb_grpc.CollectionServiceStub(c) for c in (to_victim, to_survivor)]
        # Two writers on each replica.
        senders = [asyncio.create_task(_send(stubs[i % 2], f"s{i}", acked, enough, stop)) for i in range(4)]
        await asyncio.wait_for(enough.wait(), 120)
        victim.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(victim.process.wait, 30)
        await asyncio.sleep(0.5)  # the survivor's writers go on a little
        stop.set()
        await asyncio.gather(*senders)
        missing = [d for d in acked if not (await stubs[1].Search(by_tag(d), timeout=30)).hits]
        assert missing == [], f"{len(missing)} of {len(acked)} acknowledged documents lost"
    # The replica comes back on its port and reads everything from PostgreSQL.
    suite = shared.embeddings[0]
    suite.start_component("embeddings", victim.port, _env_of(shared, 0), _log_dir(shared.logs, "embeddings-0"))
    await asyncio.to_thread(suite.wait_serving, None, 300)
    async with grpc.aio.insecure_channel(victim.address) as channel:
        stub = epb_grpc.CollectionServiceStub(channel)
        assert all([(await stub.Search(by_tag(d), timeout=30)).hits for d in acked[-8:]])


def _env_of(shared: Shared, i: int) -> dict[str, str]:
    return {
        "LUMEN_EMBEDDINGS_MODEL_REPOSITORY": str(shared.logs / "models" / "embeddings"),
        "LUMEN_EMBEDDINGS_DATABASE_URL": shared.postgres.url,
        "LUMEN_EMBEDDINGS_COLLECTIONS_DIR": str(shared.logs / f"unused-{i}"),
    }


def _code(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[attr-defined]
    return grpc.StatusCode.OK


def test_postgres_and_redis_away_unavailable_then_full_service_without_restart(shared: Shared) -> None:
    replica = collections(shared.address("embeddings", 1))
    embed_direct = epb_grpc.EmbeddingServiceStub(grpc.insecure_channel(shared.address("embeddings", 1)))
    gateway = grpc.insecure_channel(shared.address("gateways", 0))
    via_collections, via_embed = epb_grpc.CollectionServiceStub(gateway), epb_grpc.EmbeddingServiceStub(gateway)
    faces = vpb_grpc.FaceRecognitionServiceStub(grpc.insecure_channel(shared.address("vision", 0)))
    identify = vpb.IdentifyFacesRequest(gallery="crew", images=[png(samples.astronaut_face_crop(True))])
    embed = epb.EmbedRequest(texts=["still here"])
    shared.postgres.stop()
    shared.redis.stop()
    try:
        unavailable = grpc.StatusCode.UNAVAILABLE
        assert _code(lambda: replica.Search(by_tag("cat"), timeout=20)) == unavailable
        assert _code(lambda: faces.IdentifyFaces(identify, timeout=60)) == unavailable
        # Through the gateway: a key with a quota needs Redis, a search needs PostgreSQL.
        limited, writer = shared.auth("limited"), shared.auth("writer")
        assert _code(lambda: via_embed.Embed(embed, metadata=limited, timeout=20)) == unavailable
        assert _code(lambda: via_collections.Search(by_tag("cat"), metadata=writer, timeout=20)) == unavailable
        # What needs neither goes on.
        assert len(embed_direct.Embed(embed, timeout=30).embeddings) == 1
        assert len(via_embed.Embed(embed, metadata=writer, timeout=30).embeddings) == 1
    finally:
        shared.postgres.start()
        shared.redis.start()
    # Back: the very next calls succeed, no process of ours restarted.
    assert replica.Search(by_tag("cat"), timeout=20).hits[0].id == "cat"
    assert faces.IdentifyFaces(identify, timeout=60).results[0].faces[0].candidates[0].person_id == "eileen"
    assert via_collections.Search(by_tag("cat"), metadata=shared.auth("limited"), timeout=20).hits[0].id == "cat"
    assert len(via_embed.Embed(embed, metadata=shared.auth("limited"), timeout=30).embeddings) == 1
