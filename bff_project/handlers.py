"""The client API's ASGI handler: Django's routing and error envelopes, no per-request hops.

Django's stock ``ASGIHandler`` is built for sites that mix sync and async code. On the
client API (``/mobile/``, ``/web/``, ``/partner/``), which is async from end to end, it
costs a thread hop for each of: the ``request_started`` receivers, every ``MiddlewareMixin``
middleware's ``process_request`` and ``process_response`` (eight middlewares here), and
``response.close()`` with its ``request_finished`` receivers; and asgiref creates a
one-thread executor per request plus a thread to shut it down. ``docs/performance.md``
has the before/after figures. ``APIHandler`` keeps what the API relies on and drops the
rest:

- Kept: URL resolution, ``handler404``/``handler500`` (an unknown path or an exception
  in a view still becomes the JSON error envelope), ``ALLOWED_HOSTS`` validation (a bad
  ``Host`` gets the 400 envelope, as CommonMiddleware would give it), the disconnect
  watch that cancels a view whose client went away.
- Added cheaply, in the handler: ``X-Content-Type-Options: nosniff`` on every response,
  and HSTS on requests that arrived over TLS, as SecurityMiddleware would.
- Dropped: the middleware stack. Sessions, CSRF, auth, messages and the admin's history
  middleware serve the cookie-authenticated admin; API views authenticate bearer tokens
  themselves and set their own caching headers.
- Dropped: the ``request_started``/``request_finished`` signals. Their receivers are
  Django's per-request housekeeping: ``reset_queries`` and ``close_old_connections``
  (database connections of the request's thread), ``close_caches`` and
  ``reset_urlconf``. The API path never touches the database (the serving contracts are
  an in-memory snapshot refreshed by the registry's own thread, which manages its own
  connection), its cache clients are pooled per process and meant to outlive a request,
  and the URLconf is set at the start of every request. A view on these prefixes that
  needs the database must not be added: serve it through the stock handler instead.
- One executor per process: sync work still runs thread-sensitively, on asgiref's own
  process-wide single-thread executor (what ``sync_to_async`` uses outside any
  ``ThreadSensitiveContext``) instead of an executor created, and shut down by another
  thread, per request. Not ``ThreadSensitiveContext(executor=...)``: asgiref then
  refuses sync calls from tasks that outlive the request, and the response cache's
  single flight and background refresh do outlive it. One thread serialises all sync
  work of the process, so the API path must stay async.

The client surfaces themselves (the URLconf's routes whose view carries a ``surface``)
skip even that: ``APIHandler`` matches them with the URLconf's own patterns and runs
``aggregation.pipeline`` on the ASGI scope, sending its ``Reply`` as two ASGI messages,
with no ``HttpRequest``, URL resolver walk or ``HttpResponse`` in between. A cache hit
costs about a third of what the Django path costs (``docs/performance.md``). The host is
checked as Django checks it (the answer memoised per ``Host`` value), and anything this
path does not handle the same way (a script prefix, a query string that is not UTF-8, a
disallowed host) goes through Django as before. A client that goes away does not cancel
the request here: the response cache's computations are shared and run to the end
anyway, and the fan-out stops at its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponseBase
from django.urls import URLPattern, get_resolver, set_script_prefix

from contract_core.clients import CLIENTS

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIXES = tuple(f"/{client}/" for client in CLIENTS)


def _hsts_value() -> str | None:
    if not settings.SECURE_HSTS_SECONDS:
        return None
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return value


@functools.lru_cache(maxsize=64)
def _header_name(name: str) -> bytes:
    return name.lower().encode("latin-1")


def _release(response: HttpResponseBase) -> None:
    """``HttpResponseBase.close()`` without its ``request_finished`` signal."""
    # The closers are the request's (its body file) and, for a streaming response, its
    # iterator's; close() would also send request_finished, which this path skips.
    for closer in response._resource_closers:
        try:
            closer()
        except Exception:  # noqa: BLE001, S112 - close() ignores closer failures too
            continue
    response._resource_closers.clear()
    response.closed = True


class APIHandler(ASGIHandler):
    """``ASGIHandler`` for the all-async client API: no middleware, signals or hops."""

    def __init__(self) -> None:
        super().__init__()
        self._settings_changed()
        setting_changed.connect(self._on_setting_changed, weak=True)

    def _on_setting_changed(self, **kwargs: Any) -> None:
        self._settings_changed()

    def _settings_changed(self) -> None:
        """What the direct path keeps of settings, read again when they change (tests)."""
        self._hsts = _hsts_value()
        from aggregation.pipeline import Incoming

        # The TLS proxy's header as the scope names it ("x-forwarded-proto"), and its value.
        proxy = settings.SECURE_PROXY_SSL_HEADER
        self._proxy_header = (
            proxy[0].removeprefix("HTTP_").replace("_", "-").lower() if proxy else None
        )
        self._proxy_secure_value = proxy[1] if proxy else None
        # What the direct path reads of a request: the pipeline's headers, the host check's
        # and the proxy's.
        wanted = {*Incoming.HEADERS, b"host", b"x-forwarded-host"}
        if self._proxy_header:
            wanted.add(self._proxy_header.encode("latin-1"))
        self._wanted_headers = frozenset(wanted)
        self._hosts: dict[tuple, bool] = {}
        self._routes: list[tuple[Any, Any]] | None = None
        self._paths: dict[str, tuple] = {}

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        # Exceptions (Resolver404, DisallowedHost, a view's bug) become responses through
        # the URLconf's handler404/400/500, as under the stock handler.
        self._middleware_chain = convert_exception_to_response(self._checked_response)

    async def _checked_response(self, request: HttpRequest) -> HttpResponseBase:
        request.get_host()  # raises DisallowedHost for a Host outside ALLOWED_HOSTS
        return await self._get_response_async(request)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        if await self._serve_surface(scope, send):
            return
        # No ThreadSensitiveContext: see "One executor per process" above.
        await self.handle(scope, receive, send)

    async def _serve_surface(self, scope: Scope, send: Send) -> bool:
        """Answer a surface route through the pipeline directly; False: not one of ours."""
        from aggregation import pipeline

        if scope.get("root_path"):
            return False
        path = scope["path"]
        matched = self._match_surface(path)
        if matched is None:
            return False
        surface, major, kwargs = matched
        # Only the headers something here reads; repeated ones joined, as Django does.
        headers: dict[str, str] = {}
        wanted = self._wanted_headers
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.lower()
            if name in wanted:
                key, value = name.decode("latin-1"), raw_value.decode("latin-1")
                headers[key] = f"{headers[key]},{value}" if key in headers else value
        if not self._host_allowed(headers.get("host"), headers.get("x-forwarded-host"), scope):
            return False
        try:
            query_string = scope.get("query_string", b"").decode()
        except UnicodeDecodeError:
            return False
        incoming = pipeline.Incoming.from_headers(scope["method"], path, query_string, headers)
        reply = await pipeline.run(surface, incoming, major, dict(kwargs))
        fields = [(_header_name(name), value.encode("latin-1")) for name, value in reply.headers]
        fields.append((b"x-content-type-options", b"nosniff"))
        if self._hsts and self._is_secure(scope, headers):
            fields.append((b"strict-transport-security", self._hsts.encode("latin-1")))
        await send({"type": "http.response.start", "status": reply.status, "headers": fields})
        await send({"type": "http.response.body", "body": reply.body})
        return True

    def _match_surface(self, path: str) -> tuple[Any, int, dict[str, Any]] | None:
        """The surface a path routes to, its major and other URL arguments, or None."""
        found = self._paths.get(path)
        if found is None:
            found = self._paths[path] = self._route(path)
            if len(self._paths) > 4096:  # partner product ids vary: forget, do not grow
                self._paths.clear()
        return found or None

    def _route(self, path: str) -> tuple[Any, int, dict[str, Any]] | tuple[()]:
        routes = self._routes
        if routes is None:
            # The URLconf's surface routes, in its order, matched with its own patterns.
            routes = self._routes = [
                (entry.pattern, entry.callback.surface)
                for entry in get_resolver().url_patterns
                if isinstance(entry, URLPattern) and hasattr(entry.callback, "surface")
            ]
        for pattern, surface in routes:
            matched = pattern.match(path[1:])
            if matched is not None:
                kwargs = dict(matched[2])
                return surface, kwargs.pop("major"), kwargs
        return ()

    def _host_allowed(self, host: str | None, forwarded: str | None, scope: Scope) -> bool:
        """Django's own ``ALLOWED_HOSTS`` check, memoised per header value."""
        server = scope.get("server") or ("unknown", "0")
        key = (host, forwarded, server[0], server[1])
        allowed = self._hosts.get(key)
        if allowed is None:
            request = HttpRequest()
            request.META = {"SERVER_NAME": str(server[0]), "SERVER_PORT": str(server[1])}
            if host is not None:
                request.META["HTTP_HOST"] = host
            if forwarded is not None:
                request.META["HTTP_X_FORWARDED_HOST"] = forwarded
            try:
                request.get_host()
                allowed = True
            except DisallowedHost:
                allowed = False
            if len(self._hosts) >= 1024:
                self._hosts.clear()
            self._hosts[key] = allowed
        return allowed

    def _is_secure(self, scope: Scope, headers: dict[str, str]) -> bool:
        """``HttpRequest.is_secure()`` on the scope: the proxy's header when configured."""
        if self._proxy_header:
            value = headers.get(self._proxy_header)
            if value is not None:
                return value.split(",", 1)[0].strip() == self._proxy_secure_value
        return scope.get("scheme") == "https"

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        response = await super().run_get_response(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if self._hsts and request.is_secure():
            response.headers.setdefault("Strict-Transport-Security", self._hsts)
        return response

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``ASGIHandler.handle`` without the signals and the thread hop to close."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            error_response.headers.setdefault("X-Content-Type-Options", "nosniff")
            await self.send_response(error_response, send)
            _release(error_response)
            return

        async def process_request() -> HttpResponseBase:
            response = await self.run_get_response(request)
            # The client may go away while the response is being sent: nothing to do then.
            with contextlib.suppress(asyncio.CancelledError):
                await self.send_response(response, send)
            return response

        # As in Django: a disconnect cancels the view (a fan-out stops calling services).
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            request.close()
        else:
            _release(response)
        body_file.close()


def route(api: ASGIApp, default: ASGIApp, prefixes: tuple[str, ...] = API_PREFIXES) -> ASGIApp:
    """An ASGI app sending HTTP requests under ``prefixes`` to ``api``, the rest to ``default``."""

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(prefixes):
            await api(scope, receive, send)
        else:
            await default(scope, receive, send)

    return application
