"""Error pages: the admin's errors as admin pages, everything else in the JSON envelope."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from aggregation import envelope

ADMIN_PREFIX = "/admin/"


def _admin_page(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    context = {**admin.site.each_context(request), "title": title, "message": message}
    return render(request, "admin/registry_error.html", context, status=status)


def _is_admin(request: HttpRequest) -> bool:
    # each_context needs the user that the admin's middleware attached.
    return request.path.startswith(ADMIN_PREFIX) and hasattr(request, "user")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_admin(request):
        reason = str(exception) if exception and str(exception) else ""
        return _admin_page(
            request, 403, "Not allowed", reason or "Your role may not see or do this."
        )
    return envelope.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_admin(request):
        return _admin_page(request, 404, "Not found", "No such page, or not one your role may see.")
    return envelope.page_not_found(request, exception)
