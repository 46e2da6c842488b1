"""The internal services' API (SPEC section 4) as typed calls returning checked JSON."""

from __future__ import annotations

from collections.abc import Sequence

from aggregation import otel
from aggregation.downstream import DownstreamMalformed, path_segment, services
from aggregation.fanout import CallContext


async def _get(service: str, path: str, context: CallContext, **params: str | int) -> object:
    trace = context.trace
    tracer = otel.tracer() if trace is not None else None
    if tracer is None:
        return await _call(service, path, context, params, trace.headers() if trace else None)
    attributes = {"bff.dependency": service, "url.path": path}
    with otel.span(tracer, f"GET {service}", client=True, **attributes) as span:
        return await _call(service, path, context, params, trace.headers(otel.span_id_of(span)))


async def _call(service, path, context, params, trace_headers) -> object:
    return await services[service].get_json(
        path,
        client_surface=context.client,
        trace_id=context.trace_id,
        params=params or None,
        time_limit=context.timeout,
        trace_headers=trace_headers,
    )


def _object(service: str, payload: object) -> dict:
    if not isinstance(payload, dict):
        raise DownstreamMalformed(service, "expected a JSON object")
    return payload


def _list_in(service: str, payload: object, key: str) -> list:
    items = _object(service, payload).get(key)
    if not isinstance(items, list):
        raise DownstreamMalformed(service, f"expected a list under {key!r}")
    return items


async def user(context: CallContext, user_id: str) -> dict:
    return _object("user", await _get("user", f"/users/{path_segment(user_id)}", context))


async def orders(context: CallContext, user_id: str, limit: int) -> list:
    payload = await _get("order", f"/users/{path_segment(user_id)}/orders", context, limit=limit)
    return _list_in("order", payload, "orders")


async def recommendations(context: CallContext, user_id: str, limit: int) -> list:
    path = f"/users/{path_segment(user_id)}/recommendations"
    return _list_in(
        "recommendation", await _get("recommendation", path, context, limit=limit), "items"
    )


async def product(context: CallContext, product_id: str) -> dict:
    path = f"/products/{path_segment(product_id)}"
    return _object("catalog", await _get("catalog", path, context))


async def products(context: CallContext, product_ids: Sequence[str]) -> list:
    payload = await _get("catalog", "/products", context, ids=",".join(product_ids))
    return _list_in("catalog", payload, "products")


async def categories(context: CallContext) -> list:
    return _list_in("catalog", await _get("catalog", "/categories", context), "categories")
