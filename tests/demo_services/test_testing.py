"""The `DemoServices` helper the rest of the suite starts the demo services with."""

from __future__ import annotations

import httpx
import pytest

from demo_services.app import SERVICES
from demo_services.faults import NO_FAULTS
from demo_services.testing import DemoServices, DemoServicesError, free_ports

# Starts servers or subprocesses of its own.
pytestmark = pytest.mark.integration


def test_urls_and_env_describe_four_distinct_services(services: DemoServices) -> None:
    assert set(services.urls) == set(SERVICES)
    assert len(set(services.urls.values())) == 4
    assert services.env == {
        "USER_SERVICE_URL": services.urls["user"],
        "ORDER_SERVICE_URL": services.urls["order"],
        "RECOMMENDATION_SERVICE_URL": services.urls["recommendation"],
        "CATALOG_SERVICE_URL": services.urls["catalog"],
        "INTERNAL_SERVICE_TOKEN": "demo-internal-token",
    }


def test_headers_are_accepted_by_every_service(services: DemoServices) -> None:
    with httpx.Client(trust_env=False) as client:
        response = client.get(
            services.urls["user"] + "/users/usr_1", headers=services.headers(account="web-bff")
        )
    assert response.status_code == 200
    assert services.stats("user")["service_accounts"] == {"web-bff": 1}


def test_set_faults_returns_the_full_plan(services: DemoServices) -> None:
    plan = services.set_faults("catalog", status=503, seed=4)
    assert plan == {**NO_FAULTS.to_json(), "status": 503, "seed": 4}
    assert services.faults("catalog") == plan


def test_set_faults_raises_with_the_services_message(services: DemoServices) -> None:
    with pytest.raises(DemoServicesError, match="unknown key 'nonsense'"):
        services.set_faults("user", nonsense=1)


def test_clear_faults_clears_one_service_or_all(services: DemoServices) -> None:
    for service in SERVICES:
        services.set_faults(service, latency_ms=1)
    services.clear_faults("user")
    assert services.faults("user") == NO_FAULTS.to_json()
    assert services.faults("order")["latency_ms"] == 1
    services.clear_faults()
    assert all(services.faults(service) == NO_FAULTS.to_json() for service in SERVICES)


def test_an_unknown_service_name_is_refused(services: DemoServices) -> None:
    with pytest.raises(ValueError, match="unknown service 'billing'"):
        services.stats("billing")


def test_start_failure_raises_with_the_subprocess_stderr() -> None:
    demo = DemoServices(token="")
    with pytest.raises(DemoServicesError, match="INTERNAL_SERVICE_TOKEN must not be empty"):
        demo.start()
    demo.close()


def test_a_private_instance_starts_and_stops(services: DemoServices) -> None:
    with DemoServices(token="private-token") as private:
        assert private.urls != services.urls
        assert private.stats("order")["total"] == 0
    assert private.process is not None
    assert private.process.returncode == 0


def test_free_ports_are_distinct() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8
