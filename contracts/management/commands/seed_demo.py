"""Creates the demo users and roles (and, with the registry, its demo contracts); idempotent."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from contracts import roles
from contracts.demo import seed_registry


@dataclass(frozen=True)
class DemoUser:
    username: str
    demo_password: str
    group: str | None
    superuser: bool = False


DEMO_USERS = (
    DemoUser("admin", "admin-demo-password", None, superuser=True),
    DemoUser("mobile-dev", "mobile-demo-password", roles.frontend_team("mobile")),
    DemoUser("web-dev", "web-demo-password", roles.frontend_team("web")),
    DemoUser("partner-dev", "partner-demo-password", roles.frontend_team("partner")),
    DemoUser("release-manager", "release-demo-password", roles.RELEASE_MANAGERS),
)


class Command(BaseCommand):
    help = "Create the demo users, roles and contracts. Safe to run again."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        user_model = get_user_model()
        self.stdout.write("Demo logins (admin at /admin/):")
        for demo in DEMO_USERS:
            user, created = user_model.objects.get_or_create(username=demo.username)
            user.is_staff = True
            user.is_superuser = demo.superuser
            if settings.DEBUG:
                # Demo mode: the documented password, reset on every run so it is always true.
                password = demo.demo_password
            elif created:
                # Production: never a well-known password; print a fresh one once.
                password = secrets.token_urlsafe(18)
            else:
                password = None
            if password is not None:
                user.set_password(password)
            user.save()
            if demo.group:
                user.groups.add(Group.objects.get(name=demo.group))
            shown = password if password is not None else "(unchanged)"
            role = "superuser" if demo.superuser else demo.group
            self.stdout.write(f"  {demo.username:<16} {shown:<26} {role}")
        users = {
            demo.username: user_model.objects.get(username=demo.username) for demo in DEMO_USERS
        }
        authors = {client: users[f"{client}-dev"] for client in roles.FRONTEND_TEAMS}
        registry = seed_registry(
            authors, approver=users["release-manager"], confirmer=users["admin"]
        )
        for line in registry:
            self.stdout.write(f"  created {line}")
