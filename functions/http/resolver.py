"""The api function's resolver and the routers that split its routes by feature, each keeping the request it
resolves to itself.

Powertools stores the current event and context on its BaseRouter class, shared by every resolver in the process, and
a `Router` reads them through the last resolver that included it. Deployed, Lambda runs one event per process at a
time, so that is harmless; the local runtime serves requests side by side on threads (one resolver per execution
environment, local/lambdas.py, all including the same routers), where either handed one request another's event (its
query string and key). Here a resolver keeps its own event, and a router reads the resolver resolving on this thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.errors import InputError

_resolving: ContextVar[RequestResolver] = ContextVar("resolving")


class RequestResolver(APIGatewayRestResolver):
    """The Powertools REST resolver, keeping the request it resolves on itself."""

    _request_event: BaseProxyEvent
    _request_context: LambdaContext

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Resolve one event (remembering it here, not only on the shared class)."""
        self._request_event = self._to_proxy_event(dict(event))
        self._request_context = context
        token = _resolving.set(self)
        try:
            return super().resolve(event, context)
        finally:
            _resolving.reset(token)

    @property  # type: ignore[override]
    def current_event(self) -> BaseProxyEvent:
        """The event being resolved by this resolver."""
        return self._request_event

    @current_event.setter
    def current_event(self, value: BaseProxyEvent) -> None:
        self._request_event = value

    @property
    def lambda_context(self) -> LambdaContext:
        """The context of the event being resolved by this resolver."""
        return self._request_context

    @lambda_context.setter
    def lambda_context(self, value: LambdaContext) -> None:
        self._request_context = value


def resolving() -> RequestResolver:
    """The resolver resolving a request on this thread (LookupError outside a request)."""
    return _resolving.get()


class RequestRouter(APIGatewayRouter):
    """A feature's routes; they read the request of the resolver resolving it on this thread."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    @property
    def resolver(self) -> RequestResolver:
        """The resolver resolving the current request."""
        return resolving()

    @property  # type: ignore[override]
    def current_event(self) -> BaseProxyEvent:
        """The event being resolved."""
        return self.resolver.current_event

    @current_event.setter
    def current_event(self, value: BaseProxyEvent) -> None:
        self.resolver.current_event = value

    @property
    def lambda_context(self) -> LambdaContext:
        """The context of the event being resolved."""
        return self.resolver.lambda_context

    @lambda_context.setter
    def lambda_context(self, value: LambdaContext) -> None:
        self.resolver.lambda_context = value

    @property
    def context(self) -> dict[str, Any]:
        """The resolver's context while it resolves (the deps, the account); the router's own otherwise."""
        resolver = _resolving.get(None)
        return resolver.context if resolver is not None else self._context

    @context.setter
    def context(self, value: dict[str, Any]) -> None:
        self._context = value


def reject_unknown_parameters(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """A query parameter the route does not take is an error, never silently ignored."""
    route = app.context.get("_route")
    if route is None or route.func.__name__ == "not_found_handler":
        return next_middleware(app)  # no route matched: the not-found handler answers (404, or 405 for a known path)
    known = {p.alias for p in route.dependant.query_params}
    given = (app.current_event.multi_value_query_string_parameters or {}).keys()
    unknown = sorted(set(given) - known)
    if unknown:
        raise InputError(
            f"unknown query parameter `{unknown[0]}`"
            + (f"; this route takes {', '.join(sorted(known))}" if known else ""),
            code="unknown_parameter",
            parameter=unknown[0],
        )
    return next_middleware(app)
