"""The product's URLs plus a view that fails, to see Django's own 500 in the envelope."""

from django.urls import path

from bff_project.urls import handler400, handler403, handler404, handler500, urlpatterns


def boom(request):
    raise RuntimeError("secret internal detail: postgres://user:pw@db/prod")


urlpatterns = [*urlpatterns, path("boom", boom)]
__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
