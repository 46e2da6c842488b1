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
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponseBase
from django.urls import set_script_prefix

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
        self._hsts = _hsts_value()

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
        # No ThreadSensitiveContext: see "One executor per process" above.
        await self.handle(scope, receive, send)

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
