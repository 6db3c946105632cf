"""SDK operations written once, run sync on `Client` and awaited on `AsyncClient`.

An operation is a method that returns a `Plan`: the stub method to call, the request, and
how to shape the response (``then``). The `op` descriptor runs the plan the way the client
it is read from calls: ``client.embed(...)`` returns the result, ``async_client.embed(...)``
an awaitable of it; `stream_op` likewise gives an iterator or an async iterator. The
overloads on ``__get__`` keep both typed from the one definition.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

if TYPE_CHECKING:
    from lumen.aio import AsyncClient
    from lumen.client import Client

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Plan(Generic[R]):
    """One call: ``call(request)`` (a proxied stub method), then ``then`` on its response
    (on each response, for a stream)."""

    call: Callable[[Any], Any]
    request: Any
    then: Callable[[Any], R]


class _Operation(Generic[P, R]):
    """The part both kinds share: the build function, and running its plan the client's way."""

    def __init__(self, build: Callable[Concatenate[Any, P], Plan[R]]) -> None:
        self.build = build
        functools.update_wrapper(self, build)  # type: ignore[arg-type]

    def _bind(self, client: Any) -> Any:
        if client is None:
            return self
        build = self.build
        run = self._run_async if client.asynchronous else self._run

        @functools.wraps(build)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return run(build(client, *args, **kwargs))

        return bound

    @staticmethod
    def _run(plan: Plan[R]) -> Any:
        raise NotImplementedError

    @staticmethod
    def _run_async(plan: Plan[R]) -> Any:
        raise NotImplementedError


class op(_Operation[P, R]):  # lower case: used as a decorator, like property
    """A unary operation: result on Client, awaitable of it on AsyncClient."""

    @staticmethod
    def _run(plan: Plan[R]) -> R:
        return plan.then(plan.call(plan.request))

    @staticmethod
    async def _run_async(plan: Plan[R]) -> R:
        return plan.then(await plan.call(plan.request))

    @overload
    def __get__(self, client: None, owner: type) -> op[P, R]: ...
    @overload
    def __get__(self, client: AsyncClient, owner: type) -> Callable[P, Awaitable[R]]: ...
    @overload
    def __get__(self, client: Client, owner: type) -> Callable[P, R]: ...
    def __get__(self, client: Any, owner: type | None = None) -> Any:
        return self._bind(client)


class stream_op(_Operation[P, R]):
    """A server-streaming operation: an iterator on Client, an async iterator on AsyncClient."""

    @staticmethod
    def _run(plan: Plan[R]) -> Iterator[R]:
        for response in plan.call(plan.request):
            yield plan.then(response)

    @staticmethod
    async def _run_async(plan: Plan[R]) -> AsyncIterator[R]:
        async for response in plan.call(plan.request):
            yield plan.then(response)

    @overload
    def __get__(self, client: None, owner: type) -> stream_op[P, R]: ...
    @overload
    def __get__(self, client: AsyncClient, owner: type) -> Callable[P, AsyncIterator[R]]: ...
    @overload
    def __get__(self, client: Client, owner: type) -> Callable[P, Iterator[R]]: ...
    def __get__(self, client: Any, owner: type | None = None) -> Any:
        return self._bind(client)
