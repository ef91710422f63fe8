"""Workload 9: what binding a DSPy module's LM settings to variables costs per call.

Before each call a variable-aware module reads its bound variables at one revision and builds the
call's settings: `module._with_settings(module.read_bindings(), {})`. That step is timed here, with
the five auto-bound settings (temperature, max_tokens, top_p, frequency_penalty, presence_penalty),
on a bridged `SessionContext` whose cache is warm (a frontend of this run) and on a
`LocalSessionContext`. Timing as in workload 8: blocks for the average, single calls for the
percentiles, each less the harness's own cost. The target (avg ≤ 5 us) is a reference column.
Skipped, saying why, when DSPy is not installed.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from benchmarks._env import Env
from benchmarks._raw import new_session_id
from benchmarks.workloads.local_first import calibrate, measure

__all__ = ["TARGETS", "run"]

#: The issue's target, as reference only.
TARGETS: dict[str, float] = {"avg_us": 5.0}
_PER_BLOCK = 100  # one of the block sizes calibrate measures
_SETTINGS = {
    "temperature": 0.7,
    "max_tokens": 256,
    "top_p": 0.9,
    "frequency_penalty": 0.0,
    "presence_penalty": 0.0,
}


def run(env: Env) -> dict[str, Any]:
    if importlib.util.find_spec("dspy") is None:
        return {"skipped": "DSPy is not installed (pip install 'unified-bridge[dspy]')"}
    from unified_bridge import LocalSessionContext, connect
    from unified_bridge.dspy import VariableAwarePredict

    blocks, singles = env.scale(100, 1000), env.scale(2000, 20000)
    calibration = calibrate(blocks, singles)
    figures: dict[str, dict[str, float]] = {}
    with connect(env.frontends[0]) as client, client.session(new_session_id("dspy")) as bridged:
        for label, ctx in (("bridged, warm cache", bridged), ("local", LocalSessionContext())):
            for name, value in _SETTINGS.items():
                ctx[name] = value
            if label.startswith("bridged"):
                ctx.wait_for_cache(10)
            module = VariableAwarePredict("question -> answer", session_context=ctx)
            module._with_settings(module.read_bindings(), {})  # warm: the first read fills the cache

            def prepare(i: int, module: Any = module) -> Any:
                return module._with_settings(module.read_bindings(), {})

            figures[label], _ = measure(prepare, calibration, blocks, singles, _PER_BLOCK)
            figures[label]["bound"] = len(module.get_bindings())
        bridged.delete_session()
    return {"ops": figures, "targets": TARGETS, "counts": {"blocks": blocks, "single_calls": singles}}
