"""App config of the contract registry."""

from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"
    verbose_name = "Contract registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from contract_core.hooks import register_readiness_probe
        from contracts import checks  # noqa: F401 - registers the deploy gate's system check
        from contracts.api import notifications  # noqa: F401 - connects the event announcer
        from contracts.readiness import registry_probe

        register_readiness_probe("contracts", registry_probe)
