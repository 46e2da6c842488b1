"""What a caller of the registry API may do: the scopes of its token, its client restriction."""

from __future__ import annotations

from rest_framework import permissions

from contracts.api.authentication import StaffSessionAuthentication
from contracts.api.models import ApiToken


def scopes_of(request) -> frozenset[str]:
    if isinstance(request.auth, ApiToken):
        return frozenset(request.auth.scopes)
    if request.user is not None and getattr(request.user, "is_staff", False):
        return StaffSessionAuthentication.SCOPES
    return frozenset()


def client_restriction(request) -> str | None:
    """The one client this caller is limited to, or None for every client."""
    token = request.auth
    if isinstance(token, ApiToken) and token.client_id is not None:
        return token.client.name
    return None


class HasScope(permissions.BasePermission):
    """The view's ``required_scopes`` (by action, or ``"*"``) must all be on the token."""

    message = "This token lacks the scope this call needs."

    def has_permission(self, request, view) -> bool:
        if request.user is None or not request.user.is_authenticated:
            return False
        required = _required(view)
        missing = sorted(set(required) - scopes_of(request))
        if missing:
            self.message = f"This token lacks the '{missing[0]}' scope this call needs."
            return False
        return True


def _required(view) -> tuple[str, ...]:
    by_action = getattr(view, "required_scopes", {})
    action = getattr(view, "action", None)  # a viewset's action; plain views use "*"
    return tuple(by_action.get(action, by_action.get("*", ())))
