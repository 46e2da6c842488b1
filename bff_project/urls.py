"""Root URL configuration: operations endpoints, the admin and the client surfaces."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path, register_converter

from aggregation import views
from bff_project import ops
from contract_core.clients import CLIENTS


class MajorConverter:
    """A major version as written in URLs: 1, 2, … (not 0, not 01, not 1.0)."""

    regex = "[1-9][0-9]{0,5}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(MajorConverter, "major")

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("registry/api/v1/", include("contracts.api.urls")),
    path("mobile/v<major:major>/home", views.mobile_home, name="mobile-home"),
    path("web/v<major:major>/dashboard", views.web_dashboard, name="web-dashboard"),
    path(
        "partner/v<major:major>/products/<str:product_id>",
        views.partner_product,
        name="partner-product",
    ),
    path("partner/v<major:major>/products", views.partner_products, name="partner-products"),
    path(
        "<str:client>/v<major:major>/openapi.json", views.openapi_document, name="openapi-document"
    ),
    # Anything else under a client surface is answered in the envelope, in DEBUG too.
    re_path(rf"^(?P<client>{'|'.join(CLIENTS)})/(?P<rest>.*)$", views.surface_not_found),
]

if settings.BFF.get("BENCH_VIEWS"):
    # Imported only when asked for: production never loads benchmark code.
    from bench.views import trivial

    urlpatterns.append(path("bench/trivial", trivial, name="bench-trivial"))

handler400 = "aggregation.envelope.bad_request"
handler403 = "bff_project.error_pages.permission_denied"
handler404 = "bff_project.error_pages.page_not_found"
handler500 = "aggregation.envelope.server_error"
