"""No lie about an outcome: a call whose first attempt may have been applied never reports the
conflict its own retry runs into, and every exception reaches a flow's cleanup at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from tests.harness.relay import Relay
from unified_bridge import BridgeError, BridgeUnavailableError, VariableType, connect
from unified_bridge._calls import Flow, Rpc, run_flow, run_flow_async


@pytest.fixture
def relay(frontend) -> Iterator[Relay]:
    server = Relay(frontend.target)
    yield server
    server.stop()


def lose_first_reply(method: str, relay: Relay) -> list[int]:
    """The next call of ``method`` runs on the frontend, but its reply is lost (UNAVAILABLE)."""
    lost = [1]

    def hook(request: bytes, forward: Any, context: grpc.ServicerContext) -> bytes:
        reply = forward(request)
        if lost[0]:
            lost[0] -= 1
            context.abort(grpc.StatusCode.UNAVAILABLE, "reply lost")
        return reply  # type: ignore[no-any-return]

    relay.hooks[method] = hook
    return lost


def test_a_compare_and_set_whose_reply_was_lost_is_outcome_unknown(relay: Relay, session_id: str) -> None:
    with connect(relay.target) as client, client.session(session_id) as ctx:
        ctx.register_variable("x", VariableType.INTEGER, 0)
        lose_first_reply("SetVariable", relay)
        with pytest.raises(BridgeUnavailableError, match="outcome unknown") as raised:
            ctx.update_variable("x", 1, expected_version=0)
        assert relay.calls["SetVariable"] == 2  # retried, and the retry met our own write
        assert ctx.get_variable_info("x")["version"] == 1  # it was applied: a conflict would have lied
        assert raised.value.__cause__.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[union-attr]


def test_update_fn_is_applied_once_when_a_reply_is_lost(relay: Relay, session_id: str) -> None:
    with connect(relay.target) as client, client.session(session_id) as ctx:
        ctx.register_variable("n", VariableType.INTEGER, 0)
        lose_first_reply("SetVariable", relay)
        with pytest.raises(BridgeUnavailableError):
            ctx.update("n", lambda n: n + 1)
        assert relay.calls["SetVariable"] == 1  # update's compare-and-set is never retried
        assert ctx.get_variable_info("n")["value"] == 1


def test_a_delete_whose_reply_was_lost_is_outcome_unknown(relay: Relay, session_id: str) -> None:
    with connect(relay.target) as client, client.session(session_id) as ctx:
        var_id = ctx.register_variable("gone", VariableType.INTEGER, 0)
        lose_first_reply("DeleteVariable", relay)
        with pytest.raises(BridgeUnavailableError, match="outcome unknown"):
            ctx.delete_variable(var_id)
        assert "gone" not in ctx


def test_a_closed_client_raises_a_bridge_error(frontend, session_id: str) -> None:
    client = connect(frontend.target)
    ctx = client.session(session_id, cache=False)
    client._transport.close()  # the channel goes away under the context
    with pytest.raises(BridgeError, match="channel is closed"):
        ctx.get_variable("anything")


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def flow(self) -> Flow[str]:
        try:
            yield Rpc("GetVariable", None)
        except BaseException as exc:
            self.seen.append(type(exc).__name__)  # the flow's cleanup ("outcome unknown: invalidate")
            raise
        finally:
            self.seen.append("closed")
        return "done"


def test_every_exception_reaches_the_flow_at_once() -> None:
    recorder = _Recorder()

    def interrupted(step: Rpc) -> Any:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_flow(recorder.flow(), interrupted)
    assert recorder.seen == ["KeyboardInterrupt", "closed"]  # not left for the garbage collector


async def test_a_cancellation_reaches_the_flow() -> None:
    recorder = _Recorder()
    started = asyncio.Event()

    async def hanging(step: Rpc) -> Any:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(run_flow_async(recorder.flow(), hanging))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert recorder.seen == ["CancelledError", "closed"]
