"""The demo registry: clients, endpoints, approved v1 contracts and one proposal in review.

Written through ``contracts.services`` like every other registry change, so seeding
exercises the same rules the admin does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from contract_core.clients import CLIENTS
from contract_core.schema import Rule
from contracts import services
from contracts.models import CacheScope, Client, ContractVersion, Endpoint, Status

TITLES = {"mobile": "Mobile app", "web": "Web dashboard", "partner": "Partners"}


@dataclass(frozen=True)
class DemoEndpoint:
    client: str
    name: str
    description: str
    cache_scope: str
    cache_ttl_seconds: int
    rules: tuple[Rule, ...]


def _rules(section: str, *paths: str) -> tuple[Rule, ...]:
    return tuple(Rule(section, path) for path in paths)


_PARTNER_PRODUCT_FIELDS = (
    "productId",
    "sku",
    "title",
    "description",
    "brand",
    "category",
    "priceCents",
    "priceFormatted",
    "currency",
    "thumbnailUrl",
    "imageUrls",
    "rating",
    "inStock",
)

ENDPOINTS = (
    DemoEndpoint(
        "mobile",
        "home",
        "Home screen of the mobile app",
        CacheScope.PER_USER,
        30,
        _rules("user", "userId", "displayName", "avatarUrl", "loyaltyTier")
        + _rules("recentOrders", "orderId", "status", "estimatedDelivery", "itemCount")
        + _rules("recommendations", "productId", "thumbnailUrl", "title", "priceFormatted"),
    ),
    DemoEndpoint(
        "web",
        "dashboard",
        "Dashboard of the web app",
        CacheScope.PER_USER,
        30,
        _rules(
            "user",
            "userId",
            "displayName",
            "avatarUrl",
            "email",
            "loyaltyTier",
            "loyaltyPoints",
            "address.city",
            "address.country",
        )
        + _rules(
            "recentOrders",
            "orderId",
            "status",
            "placedAt",
            "estimatedDelivery",
            "itemCount",
            "totalCents",
            "currency",
            "carrier",
            "trackingNumber",
        )
        + _rules(
            "recommendations",
            "productId",
            "title",
            "thumbnailUrl",
            "priceFormatted",
            "product.rating",
            "product.reviewCount",
        )
        + _rules("categories", "categoryId", "name"),
    ),
    DemoEndpoint(
        "partner",
        "product",
        "One catalog product",
        CacheScope.SHARED,
        300,
        _rules("product", *_PARTNER_PRODUCT_FIELDS),
    ),
    DemoEndpoint(
        "partner",
        "products",
        "A batch of catalog products",
        CacheScope.SHARED,
        300,
        _rules("products", *_PARTNER_PRODUCT_FIELDS),
    ),
)

# Partner v2 renames a field, so it is a new major; v1 stays served, deprecated, until
# its sunset, which shows the versioning features in the demo.
PARTNER_V2_RENAME = ("priceFormatted", "displayPrice")
PARTNER_V1_SUNSET = timedelta(days=180)

# The proposal waiting in the release managers' queue: an additive change.
PROPOSAL = ("mobile", "home", Rule("user", "loyaltyPoints"), "Show loyalty points on home")


def seed_registry(
    authors: dict[str, AbstractBaseUser],
    approver: AbstractBaseUser,
    confirmer: AbstractBaseUser,
) -> list[str]:
    """Create what is missing; return one line per thing created."""
    created: list[str] = []
    for name in CLIENTS:
        _, new = Client.objects.get_or_create(name=name, defaults={"display_name": TITLES[name]})
        if new:
            created.append(f"client {name}")
    for demo in ENDPOINTS:
        endpoint, new = Endpoint.objects.get_or_create(
            client=Client.objects.get(name=demo.client),
            name=demo.name,
            defaults={
                "description": demo.description,
                "cache_scope": demo.cache_scope,
                "cache_ttl_seconds": demo.cache_ttl_seconds,
            },
        )
        if new:
            created.append(f"endpoint {endpoint}")
        if ContractVersion.objects.filter(major__endpoint=endpoint).exists():
            continue
        author = authors[demo.client]
        draft = services.CreateDraft(
            author, endpoint, rules=demo.rules, summary="Initial contract"
        ).execute()
        services.SubmitForReview(author, draft).execute()
        approved = services.Approve(approver, draft, comment="Demo v1").execute()
        created.append(f"contract {endpoint} {approved.label} (approved)")

    for name in ("product", "products"):
        endpoint = Endpoint.objects.get(client__name="partner", name=name)
        if endpoint.majors.filter(number=2).exists():
            continue
        v1 = services.latest_approved(endpoint.majors.get(number=1))
        source, renamed = PARTNER_V2_RENAME
        rules = [
            Rule(r.section, r.source, renamed) if r.source == source else r
            for r in services.rules_of(v1)
        ]
        draft = services.CreateDraft(
            authors["partner"],
            endpoint,
            from_version=v1,
            rules=rules,
            new_major=True,
            summary=f"Rename {source} to {renamed}",
        ).execute()
        services.SubmitForReview(authors["partner"], draft).execute()
        v2 = services.Approve(approver, draft, comment="Demo v2").execute()
        # A lifecycle change is proposed by one release manager, confirmed by another.
        proposal = services.ProposeDeprecation(
            approver,
            v1.major,
            sunset_at=timezone.now() + PARTNER_V1_SUNSET,
            reason="Partners move to v2",
        ).execute()
        services.ConfirmProposal(confirmer, proposal, comment="Demo sunset").execute()
        created.append(f"contract {endpoint} {v2.label} (approved; v1 deprecated)")

    client, endpoint_name, rule, summary = PROPOSAL
    endpoint = Endpoint.objects.get(client__name=client, name=endpoint_name)
    if not ContractVersion.objects.filter(
        major__endpoint=endpoint, change_summary=summary
    ).exists():
        base = services.latest_approved(endpoint.majors.get(number=1))
        rules = [*services.rules_of(base), rule]
        draft = services.CreateDraft(
            authors[client], endpoint, from_version=base, rules=rules, summary=summary
        ).execute()
        services.SubmitForReview(authors[client], draft).execute()
        created.append(f"proposal {endpoint} '{summary}' (submitted, in the review queue)")
    return created


def pending_reviews() -> int:
    return ContractVersion.objects.filter(status=Status.SUBMITTED).count()
