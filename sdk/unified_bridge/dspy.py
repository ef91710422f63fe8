"""Variable-aware DSPy modules: language-model settings bound to a session's variables.

An optimizer in one process sets ``temperature``; every worker's next call uses it::

    from unified_bridge.dspy import VariableAwarePredict

    predictor = VariableAwarePredict("question -> answer", session_context=ctx)
    predictor(question="Why is the sky blue?")    # this call's temperature: the variable's, now

Before each call, the module reads its bound variables once, all at one session revision (an atomic
batch that changes ``temperature`` and ``model`` together is never seen half applied; with a warm
cache that read costs microseconds), and passes them with the call: as DSPy's per-call ``config``
for :class:`VariableAwarePredict` and :class:`VariableAwareChainOfThought`, and as a per-call copy
of the LM (``dspy.context``) for any other module that uses :class:`VariableBindingMixin`. Nothing is
written to the module between calls, so concurrent calls and ``module.batch(num_threads=...)`` each
see whole settings. What the caller passes wins: ``config={"temperature": 0}`` or ``lm=...``.

Bindings: ``temperature``, ``max_tokens``, ``top_p``, ``frequency_penalty`` and
``presence_penalty`` are bound by themselves when the session has variables of those names;
``bind_variable(attr, var_name)`` binds any other LM setting; a ``model`` variable (choice or module)
picks the LM from the ``models`` mapping given to the module. Bound values read as attributes
(``predictor.temperature``). A deep copy (as optimizers make) shares the session context and keeps
the bindings; ``save``/``load`` (JSON) keep the bindings.

Needs DSPy: ``pip install 'unified-bridge[dspy]'``.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Generator, Mapping
from typing import Any

try:
    import dspy
except ImportError as exc:  # pragma: no cover - the dev extras install DSPy
    raise ImportError(
        "unified_bridge.dspy needs DSPy: install it with pip install 'unified-bridge[dspy]'"
    ) from exc

from unified_bridge.errors import ValidationError, VariableNotFoundError

__all__ = [
    "AUTO_BOUND_SETTINGS",
    "Binding",
    "VariableAwareChainOfThought",
    "VariableAwarePredict",
    "VariableBindingMixin",
]

#: LM settings bound by themselves when the session has a variable of the same name.
AUTO_BOUND_SETTINGS = ("temperature", "max_tokens", "top_p", "frequency_penalty", "presence_penalty")

# The key under which save()/dump_state() keep the bindings.
_STATE_KEY = "unified_bridge_bindings"


def _is_async(context: Any) -> bool:
    return inspect.iscoroutinefunction(getattr(type(context), "get_variables", None))


class Binding:
    """What :meth:`VariableBindingMixin.bind_variable` returns. With an asyncio context, awaiting it
    checks the variable exists and loads its value (``await predictor.bind_variable("temperature")``);
    with a blocking context that already happened."""

    def __init__(self, module: VariableBindingMixin, attr: str, var_name: str) -> None:
        self.module = module
        self.attr = attr
        self.var_name = var_name

    def __await__(self) -> Generator[Any, None, Binding]:
        return self._load().__await__()

    async def _load(self) -> Binding:
        await self.module.aread_bindings()
        return self

    def __repr__(self) -> str:
        return f"Binding({self.attr!r} -> {self.var_name!r})"


class _Bindings:
    """A module's bindings and what they need, in one object: every attribute read on a DSPy module
    goes through its Python-level ``__getattribute__`` (~0.3 us), so the per-call path reads this one
    attribute and then plain slots."""

    __slots__ = ("auto_pending", "by_attr", "context", "is_async", "last", "model_attr", "models", "names")

    def __init__(self, context: Any, models: Mapping[str, Any], auto_pending: bool) -> None:
        self.context = context
        self.is_async = _is_async(context)
        self.by_attr: dict[str, str] = {}
        self.names: list[str] = []
        self.models = dict(models)
        self.model_attr = "model"
        self.auto_pending = auto_pending
        self.last: dict[str, Any] = {}

    def set(self, attr: str, var_name: str | None) -> None:
        if var_name is None:
            self.by_attr.pop(attr, None)
            self.last.pop(attr, None)
        else:
            self.by_attr[attr] = var_name
        self.names = list(dict.fromkeys(self.by_attr.values()))

    def remember(self, values: Mapping[str, Any]) -> dict[str, Any]:
        bound = {attr: values[var_name] for attr, var_name in self.by_attr.items()}
        self.last = bound
        return bound

    def settings(self, bound: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
        """(LM keyword settings, the LM the model binding picks or None)."""
        config = dict(bound)
        if self.model_attr not in config:
            return config, None
        choice = config.pop(self.model_attr)
        lm = self.models.get(choice)
        if lm is None:
            raise ValidationError(
                f"the model variable holds {choice!r}, which the models mapping does not have "
                f"(known: {sorted(self.models)})"
            )
        return config, lm

    def __deepcopy__(self, memo: dict[int, Any]) -> _Bindings:
        # Optimizers deep-copy modules: a copy shares the session (a live connection, not data) and the
        # LMs of the models mapping, and gets its own bindings.
        clone = copy.copy(self)
        clone.by_attr = dict(self.by_attr)
        clone.names = list(self.names)
        clone.models = dict(self.models)
        clone.last = dict(self.last)
        return clone


class VariableBindingMixin:
    """Binds a DSPy module's LM settings to session variables (see the module docstring).

    For a module of your own: ``class Pipeline(VariableBindingMixin, dspy.Module)``, and
    ``self._init_bindings(ctx)`` in its ``__init__``. Each call then runs under
    ``dspy.context(lm=...)`` with a copy of the LM that carries the bound settings (a predictor with
    an LM of its own keeps it). Works with :class:`~unified_bridge.SessionContext`,
    :class:`~unified_bridge.AsyncSessionContext` and the local and local-first contexts.
    """

    #: True for modules whose forward() passes the settings to a Predict as per-call config.
    _ub_per_call_config = False
    _ub: _Bindings

    def _init_bindings(
        self,
        session_context: Any,
        *,
        bindings: Mapping[str, str] | None = None,
        auto_bind: bool = True,
        models: Mapping[str, Any] | None = None,
        model_variable: str = "model",
    ) -> None:
        if session_context is None:
            raise ValidationError("session_context is required: the context whose variables to bind")
        state = _Bindings(session_context, models or {}, auto_bind and _is_async(session_context))
        self._ub = state
        self._ub_auto = {name: name for name in AUTO_BOUND_SETTINGS} if auto_bind else {}
        if auto_bind and state.models:
            self._ub_auto[state.model_attr] = model_variable
        for attr, var_name in (bindings or {}).items():
            self._bind(attr, var_name)
        if self._ub_auto and not state.auto_pending:
            names = {variable["name"] for variable in session_context.list_variables()}
            self._bind_present(names)
        if not state.auto_pending and state.by_attr:
            self.read_bindings()  # a binding to a missing variable fails here, not at the first call

    # --- binding -----------------------------------------------------------------------------------

    def _bind_present(self, present: set[str]) -> None:
        for attr, var_name in self._ub_auto.items():
            if var_name in present and attr not in self._ub.by_attr:
                self._bind(attr, var_name)

    def _bind(self, attr: str, var_name: str) -> None:
        if not isinstance(attr, str) or not attr.isidentifier():
            raise ValidationError(
                f"cannot bind {attr!r}: a binding is named like an LM setting, e.g. 'temperature'"
            )
        if attr in vars(self) or hasattr(type(self), attr):
            raise ValidationError(f"cannot bind {attr!r}: the module already has an attribute of that name")
        self._ub.set(attr, var_name)

    def bind_variable(self, attr: str, var_name: str | None = None) -> Binding:
        """Bind the LM setting ``attr`` (``"temperature"``, ``"model"``, ...) to the variable
        ``var_name`` (default: the same name). A blocking context checks the variable exists now;
        with an asyncio context, ``await`` the result to do the same."""
        var_name = var_name or attr
        self._bind(attr, var_name)
        if not self._ub.is_async:
            try:
                self.read_bindings()
            except VariableNotFoundError:
                self._ub.set(attr, None)
                raise
        return Binding(self, attr, var_name)

    #: The reference's name for :meth:`bind_variable`.
    bind_to_variable = bind_variable

    def unbind_variable(self, attr: str) -> None:
        if attr not in self._ub.by_attr:
            raise ValidationError(f"{attr!r} is not bound to a variable")
        self._ub.set(attr, None)

    def get_bindings(self) -> dict[str, str]:
        """``{attr: variable name}``, auto-bound settings included."""
        return dict(self._ub.by_attr)

    # --- reading -----------------------------------------------------------------------------------

    def _missing(self, error: VariableNotFoundError) -> VariableNotFoundError:
        return VariableNotFoundError(
            f"{type(self).__name__} is bound to variables the session does not hold ({error.message}); "
            f"bindings: {self._ub.by_attr}"
        )

    def read_bindings(self) -> dict[str, Any]:
        """``{attr: value}`` of every binding, all at one session revision (blocking contexts)."""
        state = self._ub
        if state.is_async:
            raise ValidationError(
                f"{type(self).__name__} is bound to an asyncio context: "
                "call it with 'await module.acall(...)'"
            )
        if not state.names:
            return {}
        try:
            return state.remember(state.context.get_variables(state.names))
        except VariableNotFoundError as error:
            raise self._missing(error) from error

    async def aread_bindings(self) -> dict[str, Any]:
        """``{attr: value}`` of every binding, all at one session revision (any context)."""
        state = self._ub
        if not state.is_async:
            return self.read_bindings()
        if state.auto_pending:
            state.auto_pending = False
            self._bind_present({variable["name"] for variable in await state.context.list_variables()})
        if not state.names:
            return {}
        try:
            values: Mapping[str, Any] = await state.context.get_variables(state.names)
        except VariableNotFoundError as error:
            raise self._missing(error) from error
        return state.remember(values)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: the bound settings read as attributes.
        state = self.__dict__.get("_ub")
        if name.startswith("_") or state is None or name not in state.by_attr:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        if state.is_async:
            if name not in state.last:
                raise AttributeError(
                    f"{name!r} is bound to an asyncio context and not read yet: await module.aread_bindings()"
                )
            return state.last[name]
        return state.context.get_variable(state.by_attr[name])

    # --- applying ----------------------------------------------------------------------------------

    def _with_settings(self, bound: Mapping[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` of a Predict call with the bound settings added; the caller's own win."""
        config, lm = self._ub.settings(bound)
        caller_config = kwargs.get("config")
        kwargs["config"] = {**config, **caller_config} if caller_config else config
        if lm is not None and kwargs.get("lm") is None:
            kwargs["lm"] = lm
        return kwargs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._ub_per_call_config:
            return super().__call__(*args, **kwargs)  # type: ignore[misc]
        config, lm = self._ub.settings(self.read_bindings())
        with dspy.context(lm=_lm_for(config, lm)):
            return super().__call__(*args, **kwargs)  # type: ignore[misc]

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        if self._ub_per_call_config:
            return await super().acall(*args, **kwargs)  # type: ignore[misc]
        config, lm = self._ub.settings(await self.aread_bindings())
        with dspy.context(lm=_lm_for(config, lm)):
            return await super().acall(*args, **kwargs)  # type: ignore[misc]

    # --- saved state -------------------------------------------------------------------------------

    def dump_state(self, json_mode: bool = True) -> Any:
        state = super().dump_state(json_mode=json_mode)  # type: ignore[misc]
        state[_STATE_KEY] = {"bindings": dict(self._ub.by_attr)}
        return state

    def load_state(self, state: Mapping[str, Any], **kwargs: Any) -> Any:
        state = dict(state)
        saved = state.pop(_STATE_KEY, None)
        result = super().load_state(state, **kwargs)  # type: ignore[misc]
        if saved is not None:
            for attr in list(self._ub.by_attr):
                self._ub.set(attr, None)
            for attr, var_name in saved["bindings"].items():
                self._ub.set(attr, var_name)
        return result


class _PerCallSettings(VariableBindingMixin):
    """For modules built from a signature whose ``forward(**kwargs)`` reaches a Predict: the
    settings go in as its per-call ``config`` and ``lm``."""

    _ub_per_call_config = True

    def __init__(
        self,
        signature: Any,
        *,
        session_context: Any,
        bindings: Mapping[str, str] | None = None,
        auto_bind: bool = True,
        models: Mapping[str, Any] | None = None,
        model_variable: str = "model",
        **config: Any,
    ) -> None:
        super().__init__(signature, **config)  # type: ignore[call-arg]  # the DSPy module's
        self._init_bindings(
            session_context,
            bindings=bindings,
            auto_bind=auto_bind,
            models=models,
            model_variable=model_variable,
        )

    def forward(self, **kwargs: Any) -> Any:
        return super().forward(**self._with_settings(self.read_bindings(), kwargs))  # type: ignore[misc]

    async def aforward(self, **kwargs: Any) -> Any:
        bound = await self.aread_bindings()
        return await super().aforward(**self._with_settings(bound, kwargs))  # type: ignore[misc]


class VariableAwarePredict(_PerCallSettings, dspy.Predict):  # type: ignore[misc]
    """``dspy.Predict`` whose LM settings follow session variables.

    >>> predictor = VariableAwarePredict("question -> answer", session_context=ctx)   # doctest: +SKIP
    >>> predictor.get_bindings()                                                     # doctest: +SKIP
    {'temperature': 'temperature'}
    """


class VariableAwareChainOfThought(_PerCallSettings, dspy.ChainOfThought):  # type: ignore[misc]
    """``dspy.ChainOfThought`` whose LM settings follow session variables."""


def _lm_for(settings: Mapping[str, Any], chosen: Any) -> Any:
    """The LM a call runs with: the chosen (or configured) one, copied with the bound settings."""
    base = chosen if chosen is not None else dspy.settings.lm
    if base is None or not settings:
        return base
    return base.copy(**settings)
