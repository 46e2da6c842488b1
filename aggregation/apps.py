"""App config of the aggregation layer: auth, fan-out, projection, cache, client views."""

from django.apps import AppConfig


class AggregationConfig(AppConfig):
    name = "aggregation"
    verbose_name = "Aggregation"
