"""Chaos: frontend processes are killed (SIGKILL) while clients write and read through them.

Checks that frontends are stateless (killing one loses no acknowledged write), that a watcher
resumes on another frontend without losing an invalidation, and that the SDK cache never serves a
value older than one it has seen, through the public SDK only (plus ``watch_target``).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from unified_bridge import BridgeUnavailableError, VariableType, connect

# Each call gets a deadline well under the test timeout; a call that outlives it is an unknown outcome.
CALL_TIMEOUT = 5.0


class _Tally:
    """Outcomes of the writers' increments, shared between threads."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.acknowledged = 0
        self.unknown = 0
        self.unexpected: list[BaseException] = []
        self.writers_running = 0

    def add(self, *, acknowledged: int = 0, unknown: int = 0) -> None:
        with self._cond:
            self.acknowledged += acknowledged
            self.unknown += unknown
            self._cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self._cond:
            self.unexpected.append(exc)
            self._cond.notify_all()

    def writer_started(self) -> None:
        with self._cond:
            self.writers_running += 1

    def writer_done(self) -> None:
        with self._cond:
            self.writers_running -= 1
            self._cond.notify_all()

    def wait_for_acknowledged(self, count: int) -> bool:
        """Block until ``count`` increments were acknowledged; False if every writer stopped first."""
        with self._cond:
            while self.acknowledged < count and self.writers_running > 0:
                self._cond.wait(1.0)
            return self.acknowledged >= count and self.writers_running > 0


def _run_guarded(body: Callable[[], None], errors: list[BaseException]) -> Callable[[], None]:
    """A thread target that records any exception instead of letting it escape the thread."""

    def target() -> None:
        try:
            body()
        except BaseException as exc:  # reported by the test, never swallowed
            errors.append(exc)

    return target


@pytest.mark.slow
def test_no_acknowledged_increment_is_lost_while_frontends_are_killed(
    frontend_process_factory, session_id: str
) -> None:
    frontends = [frontend_process_factory() for _ in range(3)]
    targets = ",".join(f.target for f in frontends)
    writers, attempts_each = 4, 60
    first_kill_after, second_kill_after = 30, 80  # acknowledged increments before each kill

    with connect(targets, timeout=CALL_TIMEOUT) as setup, setup.session(session_id, cache=False) as ctx:
        ctx.register_variable("counter", VariableType.INTEGER, 0)

    tally = _Tally()
    thread_errors: list[BaseException] = []
    ready = threading.Barrier(writers + 1)
    kills: list[tuple[str, int, int]] = []  # (target, acknowledged at the kill, writers still running)

    def write() -> None:
        tally.writer_started()
        try:
            with connect(targets, timeout=CALL_TIMEOUT) as client, client.session(session_id) as wctx:
                ready.wait(30)
                for _ in range(attempts_each):
                    try:
                        wctx.update("counter", lambda v: v + 1)
                    except BridgeUnavailableError:
                        tally.add(unknown=1)  # may or may not have been applied
                    except Exception as exc:
                        tally.fail(exc)
                    else:
                        tally.add(acknowledged=1)
        except BaseException:
            ready.abort()  # do not leave the main thread waiting for a writer that never comes
            raise
        finally:
            tally.writer_done()

    def chaos() -> None:
        # Kill A, then B; C stays up, so some frontend is alive at every moment.
        for doomed, after in ((frontends[0], first_kill_after), (frontends[1], second_kill_after)):
            if not tally.wait_for_acknowledged(after):
                return  # the writers finished first: the assertions below report it
            doomed.kill()
            kills.append((doomed.target, tally.acknowledged, tally.writers_running))

    threads = [
        threading.Thread(target=_run_guarded(write, thread_errors), name=f"writer-{i}", daemon=True)
        for i in range(writers)
    ]
    for thread in threads:
        thread.start()
    try:
        ready.wait(30)  # every writer has its session (and its watch stream) before the chaos starts
    except threading.BrokenBarrierError:
        for thread in threads:
            thread.join(30)
        pytest.fail(f"a writer could not open its session: {thread_errors}")
    chaos_thread = threading.Thread(target=_run_guarded(chaos, thread_errors), name="chaos", daemon=True)
    chaos_thread.start()
    for thread in [*threads, chaos_thread]:
        thread.join(50)
        assert not thread.is_alive(), f"{thread.name} did not finish"

    assert not thread_errors, thread_errors
    assert not tally.unexpected, tally.unexpected
    assert tally.acknowledged + tally.unknown == writers * attempts_each
    assert tally.acknowledged > 0
    assert len(kills) == 2, f"the writers finished before both kills: {kills}"
    assert all(running > 0 for _, _, running in kills)  # each kill happened while writes went on

    survivor = frontends[2]
    with (
        connect(survivor.target, timeout=CALL_TIMEOUT) as fresh,
        fresh.session(session_id, cache=False) as rctx,
    ):
        final = rctx.get_variable("counter")
    assert tally.acknowledged <= final <= tally.acknowledged + tally.unknown, (
        f"final={final} acknowledged={tally.acknowledged} unknown={tally.unknown} kills={kills}"
    )


@pytest.mark.slow
def test_a_watching_cache_never_goes_back_while_its_frontend_dies(
    frontend_process_factory, session_id: str
) -> None:
    reader_frontends = {f.target: f for f in (frontend_process_factory(), frontend_process_factory())}
    writer_frontend = frontend_process_factory()
    last = 300

    with (
        connect(writer_frontend.target, timeout=CALL_TIMEOUT) as c_writer,
        connect(",".join(reader_frontends), timeout=CALL_TIMEOUT) as c_reader,
        c_writer.session(session_id, cache=False) as writer,
    ):
        writer.register_variable("x", VariableType.INTEGER, 0)
        with c_reader.session(session_id) as reader:
            assert reader.wait_for_cache(CALL_TIMEOUT)
            watched = reader.watch_target
            assert watched in reader_frontends
            assert reader["x"] == 0

            thread_errors: list[BaseException] = []
            halfway = threading.Event()
            killed = threading.Event()
            writer_done = threading.Event()
            killed_while_writing: list[bool] = []

            def write() -> None:
                try:
                    for value in range(1, last + 1):
                        writer.update_variable("x", value)
                        if value == last // 2:
                            halfway.set()
                        if value % 50 == 0:
                            time.sleep(0.01)  # let the reader and the chaos thread run on 2 cores
                finally:
                    halfway.set()
                    writer_done.set()

            def chaos() -> None:
                halfway.wait(30)
                killed_while_writing.append(not writer_done.is_set())
                reader_frontends[watched].kill()
                killed.set()

            threads = [
                threading.Thread(target=_run_guarded(write, thread_errors), name="writer", daemon=True),
                threading.Thread(target=_run_guarded(chaos, thread_errors), name="chaos", daemon=True),
            ]
            for thread in threads:
                thread.start()

            seen: list[Any] = []
            seen_at_kill = -1
            for _ in range(20_000):  # bounded: ends when the writer is done and the reader has seen it
                seen.append(reader["x"])
                if seen_at_kill < 0 and killed.is_set():
                    seen_at_kill = len(seen)
                if writer_done.is_set() and seen[-1] == last:
                    break
                time.sleep(0.0005)
            for thread in threads:
                thread.join(30)
                assert not thread.is_alive(), f"{thread.name} did not finish"
            assert not thread_errors, thread_errors
            assert killed.is_set(), "the kill never happened"
            assert seen_at_kill >= 0
            assert killed_while_writing == [True], "the writer finished before the kill"

            backwards = [(i, a, b) for i, (a, b) in enumerate(itertools.pairwise(seen)) if b < a]
            assert not backwards, f"the reader went back: {backwards[:10]} (kill after read {seen_at_kill})"
            assert all(0 <= value <= last for value in seen)
            assert seen[-1] == last, f"the reader never converged: last reads {seen[-5:]}"

            # The cache follows the stream again, now on the surviving frontend, and serves the last value.
            assert reader.wait_for_cache(CALL_TIMEOUT)
            assert reader.watch_target != watched
            tail = [reader["x"] for _ in range(20)]
            assert tail == [last] * 20
            hits = reader.cache_stats()["hits"]
            assert reader["x"] == last
            assert reader.cache_stats()["hits"] == hits + 1
