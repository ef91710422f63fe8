"""get_variables returns values of one revision: an atomic batch is never seen half applied, even
when the values come from the near cache while another process writes."""

from __future__ import annotations

import threading

from unified_bridge import SessionContext, connect


def test_an_atomic_batch_is_never_seen_half_applied(frontend_factory, session_id: str) -> None:
    writer_frontend, reader_frontend = frontend_factory(), frontend_factory()
    with connect(writer_frontend.target) as writer_client, connect(reader_frontend.target) as reader_client:
        writer: SessionContext = writer_client.session(session_id, cache=False)
        writer["temperature"], writer["model"] = 0, "m0"
        reader = reader_client.session(session_id)
        assert reader.wait_for_cache(10)
        stop = threading.Event()
        rounds = [0]

        def write_pairs() -> None:
            while not stop.is_set() and rounds[0] < 60:
                rounds[0] += 1
                i = rounds[0]
                writer.update_variables({"temperature": i, "model": f"m{i}"}, atomic=True)

        thread = threading.Thread(target=write_pairs)
        thread.start()
        try:
            torn, reads = [], 0
            while thread.is_alive():  # until the writer has made its 60 batches
                reads += 1
                pair = reader.get_variables(["temperature", "model"])
                if pair["model"] != f"m{pair['temperature']}":
                    torn.append(pair)
        finally:
            stop.set()
            thread.join(30)
        hits = reader.cache_stats()["hits"]
        reader.close()
        writer.close()
    assert torn == []
    assert rounds[0] >= 60  # the writer really ran alongside
    assert hits > 0  # and the cache served some of the snapshots
