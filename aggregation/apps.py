"""App config of the aggregation layer: auth, fan-out, projection, cache, client views."""

from django.apps import AppConfig


class AggregationConfig(AppConfig):
    name = "aggregation"
    verbose_name = "Aggregation"

    def ready(self) -> None:
        from aggregation.metrics import export_serving
        from aggregation.openapi import document
        from aggregation.pools import close_all
        from aggregation.readiness import response_cache_probe
        from contract_core.hooks import register_pool_closer, register_readiness_probe
        from contracts.codebase import serve_surface_documents
        from contracts.serving import on_snapshot

        # Reported, never unready: without the cache every request is still served.
        register_readiness_probe("responseCache", response_cache_probe, critical=False)
        register_pool_closer(close_all)
        on_snapshot(export_serving)
        serve_surface_documents(document)
