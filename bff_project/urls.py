"""Root URL configuration: operations endpoints, the admin and the client surfaces."""

from django.conf import settings
from django.contrib import admin
from django.urls import path

from aggregation import views
from bff_project import ops

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("mobile/v<int:major>/home", views.mobile_home, name="mobile-home"),
    path("web/v<int:major>/dashboard", views.web_dashboard, name="web-dashboard"),
    path(
        "partner/v<int:major>/products/<str:product_id>",
        views.partner_product,
        name="partner-product",
    ),
    path("partner/v<int:major>/products", views.partner_products, name="partner-products"),
    path("<str:client>/v<int:major>/openapi.json", views.openapi_document, name="openapi-document"),
]

if settings.BFF.get("BENCH_VIEWS"):
    # Imported only when asked for: production never loads benchmark code.
    from bench.views import trivial

    urlpatterns.append(path("bench/trivial", trivial, name="bench-trivial"))

handler400 = "aggregation.envelope.bad_request"
handler403 = "aggregation.envelope.permission_denied"
handler404 = "aggregation.envelope.page_not_found"
handler500 = "aggregation.envelope.server_error"
