"""``/registry/api/v1/``: the registry's REST API and its OpenAPI document."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from contracts.api import views

app_name = "registry-api"

router = SimpleRouter(trailing_slash=False)
router.register("clients", views.ClientViewSet, basename="client")
router.register("endpoints", views.EndpointViewSet, basename="endpoint")
router.register("majors", views.MajorViewSet, basename="major")
router.register("versions", views.VersionViewSet, basename="version")

urlpatterns = [
    path("check", views.CheckView.as_view(), name="check"),
    path("proposals", views.ProposalView.as_view(), name="proposals"),
    path("export", views.ExportView.as_view(), name="export"),
    path("openapi.json", views.SchemaView.as_view(), name="openapi"),
    *router.urls,
]
