"""ASGI entry point: ``uvicorn bff_project.asgi:application``."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bff_project.settings")

django_application = get_asgi_application()

# Imported after Django is set up: the static handler needs the app registry.
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

# Only the admin's assets live under STATIC_URL; every other path goes straight to
# Django, so the client-facing path pays one prefix comparison for this.
application = ASGIStaticFilesHandler(django_application)

# Load the serving snapshot before the first request and keep it fresh from a thread:
# the request path then reads contracts from memory only.
from contracts.serving import registry  # noqa: E402

registry.start()
