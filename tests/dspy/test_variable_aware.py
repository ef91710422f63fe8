"""Variable-aware DSPy modules with DSPy's own DummyLM: what the LM receives follows the variables."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dspy
import pytest
from dspy.teleprompt import BootstrapFewShot
from dspy.utils.dummies import DummyLM

from unified_bridge import (
    AsyncLocalSessionContext,
    LocalFirstContext,
    LocalSessionContext,
    SessionContext,
    ValidationError,
    VariableNotFoundError,
    VariableType,
    connect,
    connect_async,
)
from unified_bridge.dspy import VariableAwareChainOfThought, VariableAwarePredict, VariableBindingMixin


def answers(n: int = 50, **fields: str) -> DummyLM:
    return DummyLM([{"answer": "ok", **fields} for _ in range(n)])


def sent(lm: DummyLM) -> dict[str, Any]:
    """The settings the LM received with its last request."""
    return dict(lm.history[-1]["kwargs"])


@pytest.fixture(autouse=True)
def _fresh_dspy_settings() -> Iterator[None]:
    """Each test configures its own LM; none leaks into the next."""
    dspy.configure(lm=None)
    yield
    dspy.configure(lm=None)


@pytest.fixture
def ctx(frontend, session_id: str) -> Iterator[SessionContext]:
    with connect(frontend.target) as client, client.session(session_id) as context:
        context.register_variable("temperature", VariableType.FLOAT, 0.7, constraints={"min": 0, "max": 2})
        context.register_variable("max_tokens", VariableType.INTEGER, 256, constraints={"min": 1})
        yield context


class TestBindings:
    def test_settings_bound_by_themselves_and_read_as_attributes(self, ctx: SessionContext) -> None:
        predictor = VariableAwarePredict("question -> answer", session_context=ctx)
        assert predictor.get_bindings() == {"temperature": "temperature", "max_tokens": "max_tokens"}
        assert (predictor.temperature, predictor.max_tokens) == (0.7, 256)
        lm = answers()
        predictor(question="Why is the sky blue?", lm=lm)
        assert sent(lm) == {"temperature": 0.7, "max_tokens": 256}

    def test_a_change_made_in_another_process_shows_in_the_next_call(
        self, ctx: SessionContext, frontend_factory
    ) -> None:
        lm = answers()
        dspy.configure(lm=lm)
        predictor = VariableAwarePredict("question -> answer", session_context=ctx)
        predictor(question="q")
        assert sent(lm)["temperature"] == 0.7
        other_frontend = frontend_factory()
        script = (
            "import sys\n"
            "from unified_bridge import connect\n"
            "with connect(sys.argv[1]) as c, c.session(sys.argv[2], cache=False) as s:\n"
            "    s['temperature'] = 1.3\n"
        )
        subprocess.run(
            [sys.executable, "-c", script, other_frontend.target, ctx.session_id], check=True, timeout=60
        )
        # The update has returned in the other process; our cache converges through the watch stream.
        while ctx["temperature"] != 1.3:
            pass
        predictor(question="q")
        assert sent(lm)["temperature"] == 1.3

    def test_bind_unbind_and_rename(self, ctx: SessionContext) -> None:
        ctx.register_variable("creativity", VariableType.FLOAT, 0.2)
        predictor = VariableAwarePredict("question -> answer", session_context=ctx, auto_bind=False)
        assert predictor.get_bindings() == {}
        predictor.bind_to_variable("temperature", "creativity")
        predictor.bind_variable("max_tokens")
        assert predictor.get_bindings() == {"temperature": "creativity", "max_tokens": "max_tokens"}
        assert predictor.temperature == 0.2
        predictor.unbind_variable("max_tokens")
        lm = answers()
        predictor(question="q", lm=lm)
        assert sent(lm) == {"temperature": 0.2}
        with pytest.raises(AttributeError):
            _ = predictor.max_tokens
        with pytest.raises(ValidationError, match="not bound"):
            predictor.unbind_variable("max_tokens")
        with pytest.raises(ValidationError, match="already has an attribute"):
            predictor.bind_variable("signature", "temperature")

    def test_a_missing_variable_is_a_clear_error(self, ctx: SessionContext) -> None:
        predictor = VariableAwarePredict("question -> answer", session_context=ctx, auto_bind=False)
        with pytest.raises(VariableNotFoundError, match=r"does not hold.*top_k"):
            predictor.bind_variable("top_k")
        assert predictor.get_bindings() == {}
        bound = VariableAwarePredict("question -> answer", session_context=ctx)
        ctx.delete_variable("max_tokens")
        with pytest.raises(VariableNotFoundError, match="max_tokens"):
            bound(question="q", lm=answers())

    def test_what_the_caller_passes_wins(self, ctx: SessionContext) -> None:
        predictor = VariableAwarePredict("question -> answer", session_context=ctx, temperature=0.1, n=1)
        lm, theirs = answers(), answers()
        predictor(question="q", lm=lm, config={"temperature": 0.0})
        assert sent(lm) == {"temperature": 0.0, "max_tokens": 256, "n": 1}  # caller > binding > module
        predictor(question="q", lm=theirs)
        assert sent(theirs)["temperature"] == 0.7  # the binding beats the module's own config


class TestModelVariable:
    def test_the_model_variable_picks_the_lm(self, ctx: SessionContext) -> None:
        ctx.register_variable(
            "model", VariableType.CHOICE, "fast", constraints={"choices": ["fast", "accurate"]}
        )
        fast, accurate = answers(answer="from fast"), answers(answer="from accurate")
        predictor = VariableAwarePredict(
            "question -> answer", session_context=ctx, models={"fast": fast, "accurate": accurate}
        )
        assert predictor.get_bindings()["model"] == "model"
        assert predictor(question="q").answer == "from fast"
        ctx["model"] = "accurate"
        assert predictor(question="q").answer == "from accurate"
        assert sent(accurate)["temperature"] == 0.7
        mine = answers(answer="mine")
        assert predictor(question="q", lm=mine).answer == "mine"  # the caller's LM wins

    def test_a_model_the_mapping_lacks(self, ctx: SessionContext) -> None:
        ctx.register_variable("engine", VariableType.MODULE, "big")
        predictor = VariableAwarePredict(
            "question -> answer", session_context=ctx, models={"small": answers()}, model_variable="engine"
        )
        with pytest.raises(ValidationError, match=r"'big'.*known: \['small'\]"):
            predictor(question="q")


class TestConsistency:
    def test_concurrent_calls_never_see_half_a_settings_change(self, ctx: SessionContext) -> None:
        """An optimizer changes temperature and max_tokens together (atomically); batch calls on four
        threads each send a pair that belongs together."""
        lm = answers(2000)
        dspy.configure(lm=lm)
        predictor = VariableAwarePredict("question -> answer", session_context=ctx)
        stop, started = threading.Event(), threading.Event()

        def optimizer() -> None:
            step = 0
            while not stop.is_set():
                step = step % 190 + 1
                ctx.update_variables({"temperature": step / 100, "max_tokens": step}, atomic=True)
                started.set()

        thread = threading.Thread(target=optimizer)
        thread.start()
        pairs: set[tuple[float, int]] = set()
        try:
            assert started.wait(30)
            examples = [dspy.Example(question=f"q{i}").with_inputs("question") for i in range(100)]
            for _ in range(20):  # until the calls have seen several settings (a batch takes ~50 ms)
                predictor.batch(examples, num_threads=4, disable_progress_bar=True)
                pairs = {(e["kwargs"]["temperature"], e["kwargs"]["max_tokens"]) for e in lm.history}
                if len(pairs) > 3:
                    break
        finally:
            stop.set()
            thread.join(30)
        assert len(pairs) > 3  # the settings really changed while the calls ran
        torn = [(t, m) for t, m in pairs if (t, m) != (0.7, 256) and round(t * 100) != m]
        assert torn == []


class TestChainOfThoughtAndAsync:
    def test_chain_of_thought(self, ctx: SessionContext) -> None:
        lm = DummyLM([{"reasoning": "because", "answer": "blue"}])
        cot = VariableAwareChainOfThought("question -> answer", session_context=ctx)
        result = cot(question="sky?", lm=lm)
        assert (result.reasoning, result.answer) == ("because", "blue")
        assert sent(lm) == {"temperature": 0.7, "max_tokens": 256}

    async def test_async_context(self, frontend, session_id: str) -> None:
        async with connect_async(frontend.target) as client:
            actx = await client.session(session_id)
            await actx.register_variable("temperature", VariableType.FLOAT, 0.5)
            predictor = VariableAwarePredict("question -> answer", session_context=actx, auto_bind=False)
            await predictor.bind_to_variable("temperature", "temperature")  # the reference's form
            assert predictor.temperature == 0.5
            assert predictor.get_bindings() == {"temperature": "temperature"}
            lm = answers()
            await predictor.acall(question="q", lm=lm)
            assert sent(lm) == {"temperature": 0.5}
            await actx.set("temperature", 0.9)
            auto = VariableAwareChainOfThought("question -> answer", session_context=actx)
            cot_lm = DummyLM([{"reasoning": "r", "answer": "a"}])
            await auto.acall(question="q", lm=cot_lm)
            assert sent(cot_lm) == {"temperature": 0.9}  # auto-bound on the first call
            with pytest.raises(ValidationError, match="acall"):
                predictor(question="q", lm=lm)
            await actx.close()

    async def test_async_local_context(self) -> None:
        async with AsyncLocalSessionContext() as actx:
            await actx.register_variable("top_p", VariableType.FLOAT, 0.9)
            predictor = VariableAwarePredict("question -> answer", session_context=actx)
            lm = answers()
            await predictor.acall(question="q", lm=lm)
            assert sent(lm) == {"top_p": 0.9}


class TestLocalFirst:
    def test_bindings_follow_the_session_across_the_move(self, frontend, session_id: str) -> None:
        with connect(frontend.target) as client, LocalFirstContext(session_id, bridge=client) as ctx:
            ctx.register_variable("temperature", VariableType.FLOAT, 0.3)
            predictor = VariableAwarePredict("question -> answer", session_context=ctx)
            lm = answers()
            predictor(question="q", lm=lm)
            assert sent(lm) == {"temperature": 0.3}
            ctx.register_program("worker", {"requires_python": True})
            with client.session(session_id) as other:
                other["temperature"] = 1.5
            while ctx["temperature"] != 1.5:
                pass
            predictor(question="q", lm=lm)
            assert sent(lm) == {"temperature": 1.5}

    def test_local_session(self) -> None:
        with LocalSessionContext() as ctx:
            ctx["temperature"] = 0.4
            predictor = VariableAwarePredict("question -> answer", session_context=ctx)
            lm = answers()
            predictor(question="q", lm=lm)
            ctx["temperature"] = 0.6
            predictor(question="q", lm=lm)
            assert [entry["kwargs"]["temperature"] for entry in lm.history] == [0.4, 0.6]


class TestCopiesAndSaving:
    def test_deepcopy_shares_the_session_and_keeps_bindings(self, ctx: SessionContext) -> None:
        predictor = VariableAwarePredict("question -> answer", session_context=ctx)
        for clone in (copy.deepcopy(predictor), predictor.deepcopy(), predictor.reset_copy()):
            assert clone.get_bindings() == predictor.get_bindings()
            assert clone._ub.context is ctx
        ctx["temperature"] = 1.1
        lm = answers()
        predictor.deepcopy()(question="q", lm=lm)
        assert sent(lm)["temperature"] == 1.1

    def test_an_optimizer_compile_keeps_bindings(self, ctx: SessionContext) -> None:
        lm = DummyLM([{"answer": "blue"}] * 50)
        dspy.configure(lm=lm)
        student = VariableAwarePredict("question -> answer", session_context=ctx)
        trainset = [
            dspy.Example(question=f"sky {i}?", answer="blue").with_inputs("question") for i in range(3)
        ]
        compiled = BootstrapFewShot(
            metric=lambda example, prediction, trace=None: prediction.answer == example.answer,
            max_bootstrapped_demos=2,
        ).compile(student, trainset=trainset)
        assert compiled is not student
        assert compiled.get_bindings() == student.get_bindings()
        assert compiled._ub.context is ctx
        assert compiled.demos  # the compile really ran
        ctx["temperature"] = 0.2
        compiled(question="sky?")
        assert sent(lm)["temperature"] == 0.2

    def test_save_and_load_keep_bindings(self, ctx: SessionContext, tmp_path: Path) -> None:
        ctx.register_variable("creativity", VariableType.FLOAT, 1.2)
        saved = VariableAwarePredict("question -> answer", session_context=ctx, auto_bind=False)
        saved.bind_variable("temperature", "creativity")
        path = tmp_path / "predictor.json"
        saved.save(str(path))
        assert json.loads(path.read_text())["unified_bridge_bindings"] == {
            "bindings": {"temperature": "creativity"}
        }
        loaded = VariableAwarePredict("question -> answer", session_context=ctx, auto_bind=False)
        loaded.load(str(path))
        assert loaded.get_bindings() == {"temperature": "creativity"}
        lm = answers()
        loaded(question="q", lm=lm)
        assert sent(lm) == {"temperature": 1.2}


class TestAnyModule:
    def test_a_module_of_ones_own(self, ctx: SessionContext) -> None:
        class Pipeline(VariableBindingMixin, dspy.Module):
            def __init__(self, session_context: Any) -> None:
                super().__init__()
                self.answer = dspy.Predict("question -> answer")
                self._init_bindings(session_context)

            def forward(self, question: str) -> Any:
                self.seen = dict(dspy.settings.lm.kwargs)
                return self.answer(question=question)

        lm = answers()
        dspy.configure(lm=lm)
        pipeline = Pipeline(ctx)
        assert pipeline(question="q").answer == "ok"
        assert pipeline.seen["temperature"] == 0.7
        assert pipeline.seen["max_tokens"] == 256
        assert lm.kwargs["temperature"] == 0.0  # the configured LM itself is untouched


class TestOptionalExtra:
    def test_the_core_never_imports_dspy(self) -> None:
        script = "import sys, unified_bridge; assert 'dspy' not in sys.modules, 'dspy was imported'"
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60)

    def test_without_dspy_the_error_names_the_extra(self) -> None:
        script = (
            "import sys\n"
            "sys.modules['dspy'] = None  # as if DSPy were not installed\n"
            "try:\n"
            "    import unified_bridge.dspy\n"
            "except ImportError as exc:\n"
            "    print(exc)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], check=True, timeout=60, capture_output=True, text=True
        )
        assert "pip install 'unified-bridge[dspy]'" in done.stdout
