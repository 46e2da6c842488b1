"""The ASGI application of one demo service: routing, auth, counters and control endpoints."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from demo_services import payloads
from demo_services.faults import FaultPlan, FaultPlanError, FaultState
from demo_services.responses import Receive, Scope, Send, error_body, read_body, send_body

SERVICES = ("user", "order", "recommendation", "catalog")
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_BATCH_IDS = 200
MAX_TRACE_IDS = 1000
_MAX_PLAN_BYTES = 65_536

NOT_FOUND = error_body("not_found")
METHOD_NOT_ALLOWED = error_body("method_not_allowed")
UNAUTHORIZED = error_body("unauthorized")
_ALLOW_GET = ((b"allow", b"GET"),)

Handler = Callable[[str, bytes], tuple[int, bytes]]


class QueryError(ValueError):
    """A query string the route cannot serve; its message goes to the client."""


@dataclass(frozen=True)
class Route:
    """A data route: `template` is how counters name it, e.g. "GET /users/{userId}"."""

    template: str
    method: str
    segments: tuple[str | None, ...]  # literal path segments, None where the id goes
    handler: Handler
    counts: str | None = None  # "user", "product" or "products": which id counter to bump


def _route(template: str, handler: Handler, counts: str | None = None) -> Route:
    method, path = template.split(" ")
    segments = tuple(None if part.startswith("{") else part for part in path.split("/"))
    return Route(template, method, segments, handler, counts)


def _query(query: bytes) -> dict[str, str]:
    return dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)) if query else {}


def _limit(query: bytes) -> int:
    raw = _query(query).get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    # str.isdigit alone accepts non-ASCII digits that int() would happily convert.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise QueryError(f"limit must be an integer between 1 and {MAX_LIMIT}")
    return int(raw)


def batch_ids(query: bytes) -> list[str]:
    """The distinct ids of `GET /products?ids=a,b,c`, in the requested order."""
    raw = _query(query).get("ids")
    if raw is None:
        raise QueryError("ids is required: /products?ids=prd_1,prd_2")
    requested = [part.strip() for part in raw.split(",") if part.strip()]
    if not requested:
        raise QueryError("ids must name at least one product id")
    if len(requested) > MAX_BATCH_IDS:
        raise QueryError(f"ids must name at most {MAX_BATCH_IDS} product ids")
    return list(dict.fromkeys(requested))


def _found(body: bytes | None) -> tuple[int, bytes]:
    return (200, body) if body is not None else (404, NOT_FOUND)


def _get_user(user_id: str, query: bytes) -> tuple[int, bytes]:
    return _found(payloads.user_body(user_id))


def _get_orders(user_id: str, query: bytes) -> tuple[int, bytes]:
    return _found(payloads.orders_body(user_id, _limit(query)))


def _get_recommendations(user_id: str, query: bytes) -> tuple[int, bytes]:
    return _found(payloads.recommendations_body(user_id, _limit(query)))


def _get_product(product_id: str, query: bytes) -> tuple[int, bytes]:
    return _found(payloads.product_body(product_id))


def _get_products(_: str, query: bytes) -> tuple[int, bytes]:
    return 200, payloads.products_body(batch_ids(query))


def _get_categories(_: str, query: bytes) -> tuple[int, bytes]:
    return 200, payloads.CATEGORIES_BODY


ROUTES: dict[str, tuple[Route, ...]] = {
    "user": (_route("GET /users/{userId}", _get_user, "user"),),
    "order": (_route("GET /users/{userId}/orders", _get_orders, "user"),),
    "recommendation": (
        _route("GET /users/{userId}/recommendations", _get_recommendations, "user"),
    ),
    "catalog": (
        _route("GET /products/{productId}", _get_product, "product"),
        _route("GET /products", _get_products, "products"),
        _route("GET /categories", _get_categories),
    ),
}


def _bump(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _remember(seen: dict[str, None], value: str) -> None:
    # A dict is an ordered set: re-inserting moves a repeated value to the newest end.
    seen.pop(value, None)
    seen[value] = None
    if len(seen) > MAX_TRACE_IDS:
        del seen[next(iter(seen))]


class Counters:
    """What a service has been asked since the last reset."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0
        self.unauthorized = 0
        self.with_trace_id = 0
        self.with_authorization = 0
        self.by_route: dict[str, int] = {}
        self.by_user: dict[str, int] = {}
        self.by_product: dict[str, int] = {}
        self.service_accounts: dict[str, int] = {}
        self._trace_ids: dict[str, None] = {}
        self._traceparents: dict[str, None] = {}

    def saw_trace_id(self, trace_id: str) -> None:
        _remember(self._trace_ids, trace_id)

    def saw_traceparent(self, traceparent: str, tracestate: str) -> None:
        _remember(self._traceparents, f"{traceparent} {tracestate}".rstrip())

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "unauthorized": self.unauthorized,
            "by_route": self.by_route,
            "by_user": self.by_user,
            "by_product": self.by_product,
            "with_trace_id": self.with_trace_id,
            "with_authorization": self.with_authorization,
            "service_accounts": self.service_accounts,
            "trace_ids_seen": list(self._trace_ids),
            # "<traceparent> <tracestate>", the latter when sent: W3C propagation.
            "traceparents_seen": list(self._traceparents),
        }


ControlHandler = Callable[[Receive], Awaitable[tuple[int, bytes]]]


class DemoService:
    """One demo service as an ASGI callable; `counters` and `faults` are its live state."""

    def __init__(self, service: str, internal_token: str, faults: FaultState | None = None):
        if service not in ROUTES:
            raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
        if not internal_token:
            raise ValueError("internal_token must not be empty")
        self.service = service
        self.routes = ROUTES[service]
        self.counters = Counters()
        self.faults = faults if faults is not None else FaultState()
        self._token = internal_token.encode()
        self._control: dict[str, dict[str, ControlHandler]] = {
            "/_control/faults": {
                "GET": self._get_faults,
                "PUT": self._put_faults,
                "DELETE": self._delete_faults,
            },
            "/_control/stats": {"GET": self._get_stats},
            "/_control/reset": {"POST": self._reset},
            "/_control/health": {"GET": self._health},
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith("/_control"):
            await self._serve_control(scope, receive, send)
            return

        counters = self.counters
        counters.total += 1
        account = token = trace_id = traceparent = tracestate = b""
        has_authorization = False
        for name, value in scope["headers"]:
            if name == b"x-service-account":
                account = value
            elif name == b"x-internal-token":
                token = value
            elif name == b"x-trace-id":
                trace_id = value
            elif name == b"traceparent":
                traceparent = value
            elif name == b"tracestate":
                tracestate = value
            elif name == b"authorization":
                has_authorization = True
        if account:
            _bump(counters.service_accounts, account.decode("latin-1"))
        if trace_id:
            counters.with_trace_id += 1
            counters.saw_trace_id(trace_id.decode("latin-1"))
        if traceparent:
            counters.saw_traceparent(traceparent.decode("latin-1"), tracestate.decode("latin-1"))
        if has_authorization:
            counters.with_authorization += 1

        route, param = self._match(path)
        if route is None:
            await send_body(send, 404, NOT_FOUND)
            return
        if scope["method"] != route.method:
            await send_body(send, 405, METHOD_NOT_ALLOWED, extra_headers=_ALLOW_GET)
            return
        if not (
            len(account) > 4
            and account.endswith(b"-bff")
            and hmac.compare_digest(token, self._token)
        ):
            counters.unauthorized += 1
            await self.faults.respond(receive, send, 401, UNAUTHORIZED)
            return

        _bump(counters.by_route, route.template)
        query: bytes = scope["query_string"]
        try:
            if route.counts == "user":
                _bump(counters.by_user, param)
            elif route.counts == "product":
                _bump(counters.by_product, param)
            elif route.counts == "products":
                for product_id in batch_ids(query):
                    _bump(counters.by_product, product_id)
            status, body = route.handler(param, query)
        except QueryError as exc:
            status, body = 400, error_body("bad_request", str(exc))
        await self.faults.respond(receive, send, status, body)

    def _match(self, path: str) -> tuple[Route | None, str]:
        parts = path.split("/")
        for route in self.routes:
            if len(parts) != len(route.segments):
                continue
            param = ""
            for part, segment in zip(parts, route.segments, strict=True):
                if segment is None:
                    param = part
                elif segment != part:
                    break
            else:
                return route, param
        return None, ""

    async def _serve_control(self, scope: Scope, receive: Receive, send: Send) -> None:
        methods = self._control.get(scope["path"])
        if methods is None:
            await send_body(send, 404, NOT_FOUND)
            return
        handler = methods.get(scope["method"])
        if handler is None:
            allow = ", ".join(methods).encode()
            await send_body(send, 405, METHOD_NOT_ALLOWED, extra_headers=((b"allow", allow),))
            return
        status, body = await handler(receive)
        await send_body(send, status, body)

    async def _get_faults(self, receive: Receive) -> tuple[int, bytes]:
        return 200, orjson.dumps(self.faults.plan.to_json())

    async def _put_faults(self, receive: Receive) -> tuple[int, bytes]:
        raw = await read_body(receive, _MAX_PLAN_BYTES)
        if raw is None:
            return 400, error_body("invalid_fault_plan", "the fault plan is too large")
        try:
            plan = FaultPlan.from_json(orjson.loads(raw))
        except orjson.JSONDecodeError:
            return 400, error_body("invalid_fault_plan", "the body is not valid JSON")
        except FaultPlanError as exc:
            return 400, error_body("invalid_fault_plan", str(exc))
        self.faults.install(plan)
        return 200, orjson.dumps(plan.to_json())

    async def _delete_faults(self, receive: Receive) -> tuple[int, bytes]:
        self.faults.clear()
        return 200, orjson.dumps(self.faults.plan.to_json())

    async def _get_stats(self, receive: Receive) -> tuple[int, bytes]:
        return 200, orjson.dumps({"service": self.service, **self.counters.snapshot()})

    async def _reset(self, receive: Receive) -> tuple[int, bytes]:
        self.counters.reset()
        self.faults.clear()
        return 200, orjson.dumps({"service": self.service, "status": "reset"})

    async def _health(self, receive: Receive) -> tuple[int, bytes]:
        return 200, orjson.dumps({"service": self.service, "status": "ok"})


def make_app(service: str, internal_token: str, *, faults: FaultState | None = None) -> DemoService:
    """The ASGI application of `service`, one of SERVICES."""
    return DemoService(service, internal_token, faults)
