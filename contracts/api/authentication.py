"""Who is calling the registry API: a bearer token, or a staff member's admin session."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from contracts.api.models import ApiToken, Scope, digest

# last_used_at is written at most this often per token: one UPDATE per call would make
# every read a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)
MAX_TOKEN_LENGTH = 200


class RegistryTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer bffreg_…``: the token's owner, with the token as ``request.auth``."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, secret = header.partition(" ")
        secret = secret.strip()
        if keyword.lower() != self.keyword.lower() or not secret:
            raise exceptions.AuthenticationFailed(
                "The Authorization header must be 'Bearer <token>'."
            )
        if len(secret) > MAX_TOKEN_LENGTH or " " in secret:
            raise exceptions.AuthenticationFailed("The token is malformed.")
        token = (
            ApiToken.objects.usable()
            .select_related("user", "client")
            .filter(digest=digest(secret))
            .first()
        )
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token is unknown, revoked or expired.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        # The audit history names whoever the Django request says; make that the owner.
        request._request.user = token.user
        return token.user, token

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="registry"'


class StaffSessionAuthentication(authentication.SessionAuthentication):
    """The admin's session, for staff browsing the API; it reads and runs checks only."""

    SCOPES = frozenset({Scope.READ, Scope.CHECK})

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None or not result[0].is_staff:
            return None
        return result
