"""Process B of the cross-process tests: a SessionContext driven by JSON lines on stdin.

Commands (one JSON object per line), each answered by one JSON line on stdout:
  {"op": "read", "name": "x"}                      -> {"value": ...}
  {"op": "await", "name": "x", "value": v, "then": n}
      read (cached) until the value is v, then n more times -> {"stale_after": k, "hits": h}
  {"op": "stats"}                                  -> the cache stats
"""

from __future__ import annotations

import json
import sys

from unified_bridge import connect


def main() -> None:
    target, session_id = sys.argv[1], sys.argv[2]
    with connect(target) as client, client.session(session_id) as ctx:
        print(json.dumps({"ready": True, "watch_target": ctx.watch_target}), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            op = command["op"]
            if op == "read":
                reply: dict[str, object] = {"value": ctx[command["name"]]}
            elif op == "await":
                name, wanted = command["name"], command["value"]
                while ctx[name] != wanted:
                    pass
                stale = sum(1 for _ in range(command["then"]) if ctx[name] != wanted)
                reply = {"stale_after": stale, "hits": ctx.cache_stats()["hits"]}
            elif op == "stats":
                reply = dict(ctx.cache_stats())
            else:
                reply = {"error": f"unknown op {op!r}"}
            print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
