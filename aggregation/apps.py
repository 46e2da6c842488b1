"""App config of the aggregation layer: auth, fan-out, projection, cache, client views."""

from django.apps import AppConfig


class AggregationConfig(AppConfig):
    name = "aggregation"
    verbose_name = "Aggregation"

    def ready(self) -> None:
        from aggregation.pools import close_all
        from aggregation.readiness import response_cache_probe
        from bff_project.lifecycle import register_pool_closer
        from bff_project.ops import register_readiness_probe

        # Reported, never unready: without the cache every request is still served.
        register_readiness_probe("responseCache", response_cache_probe, critical=False)
        register_pool_closer(close_all)
