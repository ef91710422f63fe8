"""Pythonic views of a session: ``ctx.v.name``, ``ctx.variable("name")`` and ``ctx.batch_updates()``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

__all__ = ["AsyncVariableProxy", "BatchUpdater", "VariableNamespace", "VariableProxy"]


class SessionContext(Protocol):
    """What the views need of a blocking context (bridged, local or local-first)."""

    def __getitem__(self, name: str) -> Any: ...
    def __setitem__(self, name: str, value: Any) -> None: ...
    def __delitem__(self, name: str) -> None: ...
    def get_variable(self, name_or_id: str) -> Any: ...
    def get_variable_info(self, name_or_id: str) -> dict[str, Any]: ...
    def update_variable(self, name_or_id: str, value: Any, expected_version: int | None = None) -> int: ...
    def update(self, name_or_id: str, fn: Callable[[Any], Any]) -> Any: ...
    def list_variables(self, pattern: str | None = None) -> list[dict[str, Any]]: ...


class AsyncSessionContext(Protocol):
    """What the views need of an asyncio context."""

    def get_variable(self, name_or_id: str) -> Awaitable[Any]: ...
    def get_variable_info(self, name_or_id: str) -> Awaitable[dict[str, Any]]: ...
    def update_variable(
        self, name_or_id: str, value: Any, expected_version: int | None = None
    ) -> Awaitable[int]: ...
    def update(self, name_or_id: str, fn: Callable[[Any], Any]) -> Awaitable[Any]: ...


class VariableNamespace:
    """Attribute access to variables: ``ctx.v.lr`` reads, ``ctx.v.lr = 0.1`` writes (registering new
    names with an inferred type), ``del ctx.v.lr`` deletes.

    Reads go through ``__getattribute__`` rather than ``__getattr__``: the latter runs only after a
    failed normal lookup has raised and caught an AttributeError, which made ``ctx.v.x`` ten times
    slower than ``ctx["x"]``. Each namespace is of its own subclass whose ``__getattribute__`` holds
    its context's ``__getitem__`` in a closure: no attribute lookup on the way to the read.
    """

    __slots__ = ("_ctx",)
    _ctx: SessionContext

    def __new__(cls, ctx: SessionContext) -> VariableNamespace:
        get = ctx.__getitem__

        def __getattribute__(self: VariableNamespace, name: str) -> Any:
            if name[:1] == "_" and (name[:2] == "__" or name == "_ctx"):  # dunders and its own slot
                return object.__getattribute__(self, name)
            try:
                return get(name)
            except KeyError as exc:
                raise AttributeError(str(exc)) from exc

        members = {"__slots__": (), "__getattribute__": __getattribute__, "__module__": cls.__module__}
        bound: type[VariableNamespace] = type(cls.__name__, (cls,), members)
        namespace = object.__new__(bound)
        object.__setattr__(namespace, "_ctx", ctx)
        return namespace

    def __setattr__(self, name: str, value: Any) -> None:
        self._ctx[name] = value

    def __delattr__(self, name: str) -> None:
        del self._ctx[name]

    def __dir__(self) -> list[str]:
        return [v["name"] for v in self._ctx.list_variables()]


class VariableProxy:
    """A handle on one variable, for repeated access: ``var.value``, ``var.value = 3``,
    ``var.update(lambda v: v + 1)``."""

    __slots__ = ("_ctx", "name")

    def __init__(self, ctx: SessionContext, name: str) -> None:
        self._ctx = ctx
        self.name = name

    @property
    def value(self) -> Any:
        return self._ctx.get_variable(self.name)

    @value.setter
    def value(self, new_value: Any) -> None:
        self._ctx.update_variable(self.name, new_value)

    def update(self, fn: Callable[[Any], Any]) -> Any:
        return self._ctx.update(self.name, fn)

    def info(self) -> dict[str, Any]:
        return self._ctx.get_variable_info(self.name)

    def __repr__(self) -> str:
        return f"VariableProxy({self.name!r})"


class AsyncVariableProxy:
    """The asyncio twin of :class:`VariableProxy`: ``await var.get()``, ``await var.set(3)``."""

    __slots__ = ("_ctx", "name")

    def __init__(self, ctx: AsyncSessionContext, name: str) -> None:
        self._ctx = ctx
        self.name = name

    async def get(self) -> Any:
        return await self._ctx.get_variable(self.name)

    async def set(self, new_value: Any) -> None:
        await self._ctx.update_variable(self.name, new_value)

    async def update(self, fn: Callable[[Any], Any]) -> Any:
        return await self._ctx.update(self.name, fn)

    async def info(self) -> dict[str, Any]:
        return await self._ctx.get_variable_info(self.name)

    def __repr__(self) -> str:
        return f"AsyncVariableProxy({self.name!r})"


class BatchUpdater:
    """Collects writes inside ``with ctx.batch_updates() as batch:``; the context commits them once
    when the block ends without an exception, and ``results`` then holds ``{name: True | message}``."""

    def __init__(self, read: Callable[[str], Any]) -> None:
        self._read = read
        self.pending: dict[str, Any] = {}
        self.results: dict[str, bool | str] | None = None

    def __setitem__(self, name: str, value: Any) -> None:
        self.pending[name] = value

    def __getitem__(self, name: str) -> Any:
        """A pending value if the block wrote one, else the variable's current value (sync only)."""
        if name in self.pending:
            return self.pending[name]
        return self._read(name)

    def __contains__(self, name: str) -> bool:
        return name in self.pending

    def __iter__(self) -> Iterator[str]:
        return iter(self.pending)

    def __len__(self) -> int:
        return len(self.pending)
