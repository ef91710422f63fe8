"""The same frontend code on a Redis Cluster: scripts, watches and listing across nodes."""

from __future__ import annotations

import grpc
import pytest
import redis

from tests.integration.helpers import EventReader, create_session, register_int, set_int
from unified_bridge.proto import unified_bridge_pb2 as pb
from unified_bridge.proto import unified_bridge_pb2_grpc as pb_grpc

pytestmark = pytest.mark.real_redis


@pytest.fixture
def cluster_stubs(redis_cluster_url, frontend_factory):
    """Raw stubs to two frontends on the cluster."""
    frontends = [frontend_factory(redis_url=redis_cluster_url, redis_cluster=True) for _ in range(2)]
    channels = [grpc.insecure_channel(frontend.target) for frontend in frontends]
    yield [pb_grpc.UnifiedBridgeStub(channel) for channel in channels]
    for channel in channels:
        channel.close()


def _sessions_on_every_node(cluster_url: str, prefix: str, count: int = 12) -> list[str]:
    """Session ids whose hash tags land on every primary of the cluster."""
    with redis.RedisCluster.from_url(cluster_url) as client:
        primaries = {node.name for node in client.get_primaries()}
        chosen: dict[str, list[str]] = {}
        index = 0
        while len(chosen) < len(primaries) or sum(map(len, chosen.values())) < count:
            session_id = f"{prefix}_{index}"
            index += 1
            node = client.get_node_from_key(f"ub:2:{{{session_id}}}:session").name
            if len(chosen.get(node, [])) < count // len(primaries):
                chosen.setdefault(node, []).append(session_id)
        assert set(chosen) == primaries
    return [session_id for ids in chosen.values() for session_id in ids]


def test_writes_reads_and_watches_work_on_every_node(cluster_stubs, redis_cluster_url, session_id):
    writer, watcher = cluster_stubs
    sessions = _sessions_on_every_node(redis_cluster_url, session_id)
    readers = {}
    try:
        for sid in sessions:
            create_session(writer, sid)
            register_int(writer, sid, "x")
            readers[sid] = EventReader(watcher, sid, from_now=True)
            readers[sid].until_caught_up()
        for sid in sessions:
            assert set_int(writer, sid, "x", 7).version == 1
        for sid in sessions:
            event = readers[sid].next()
            assert event is not None
            assert (event.revision, event.changes[0].value.integer_value) == (2, 7)
            fetched = watcher.GetVariable(pb.GetVariableRequest(session_id=sid, name_or_id="x"))
            assert (fetched.value.integer_value, fetched.version) == (7, 1)
    finally:
        for reader in readers.values():
            reader.close()


def test_atomic_batch_and_compare_and_set_on_a_cluster(cluster_stubs, session_id):
    stub = cluster_stubs[0]
    create_session(stub, session_id)
    register_int(stub, session_id, "a")
    register_int(stub, session_id, "b", constraints=pb.Constraints(max=10))
    with pytest.raises(grpc.RpcError) as info:
        stub.SetVariables(
            pb.SetVariablesRequest(
                session_id=session_id,
                atomic=True,
                updates=[
                    pb.VariableUpdate(name_or_id="a", value=pb.Value(integer_value=1)),
                    pb.VariableUpdate(name_or_id="b", value=pb.Value(integer_value=11)),
                ],
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stub.GetVariable(pb.GetVariableRequest(session_id=session_id, name_or_id="a")).version == 0
    set_int(stub, session_id, "a", 5, expected_version=0)
    with pytest.raises(grpc.RpcError) as info:
        set_int(stub, session_id, "a", 6, expected_version=0)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_listing_sessions_pages_across_nodes(cluster_stubs, redis_cluster_url, session_id):
    stub = cluster_stubs[0]
    sessions = _sessions_on_every_node(redis_cluster_url, f"{session_id}_list", count=9)
    for sid in sessions:
        create_session(stub, sid)
    listed, token = [], ""
    while True:
        page = stub.ListSessions(pb.ListSessionsRequest(page_size=4, page_token=token))
        listed += page.session_ids
        token = page.next_page_token
        if not token:
            break
    assert set(sessions) <= set(listed)
    assert len(listed) == len(set(listed))  # no duplicates across pages
