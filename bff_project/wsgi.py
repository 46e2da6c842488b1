"""WSGI entry point, for tooling that wants one; the product is served over ASGI."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bff_project.settings")

application = get_wsgi_application()
