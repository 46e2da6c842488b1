"""Source schemas: the fields each internal service sends, spelled exactly as it sends them.

Fields wrapped in ``internal(...)`` are for the company's eyes (risk, costs, internal ids):
the registry refuses them for external clients unless a release manager overrides, with a
reason. ``personal(...)`` marks personal data; the field picker labels both.

The registry only lets a rule name a field declared here, and the shape of every contract
version is computed from these declarations; changing one changes the fingerprint of
every version that uses it, which is what the deploy gate watches.
"""

from __future__ import annotations

from contract_core.schema import (
    boolean,
    integer,
    internal,
    list_of,
    nested,
    number,
    obj,
    personal,
    string,
)

LOYALTY_TIERS = ("bronze", "silver", "gold", "platinum")
ORDER_STATUSES = ("placed", "packed", "shipped", "delivered", "cancelled")

USER = obj(
    userId=string(),
    displayName=string(),
    firstName=personal(string()),
    lastName=personal(string()),
    avatarUrl=string(nullable=True),
    email=personal(string()),
    emailVerified=boolean(),
    phone=personal(string(nullable=True)),
    phoneVerified=boolean(),
    dateOfBirth=personal(string(nullable=True)),
    locale=string(),
    timezone=string(),
    country=string(),
    currency=string(),
    address=nested(
        obj(
            street=personal(string()),
            city=string(),
            postalCode=personal(string()),
            country=string(),
        )
    ),
    preferences=nested(
        obj(
            language=string(),
            notifications=boolean(),
            theme=string(enum=("light", "dark", "system")),
        )
    ),
    loyaltyTier=string(enum=LOYALTY_TIERS),
    loyaltyPoints=integer(),
    marketingOptIn=boolean(),
    accountStatus=string(enum=("active", "suspended", "closed")),
    kycStatus=internal(string(enum=("verified", "pending", "not_required"))),
    twoFactorEnabled=boolean(),
    signupChannel=string(),
    createdAt=string(),
    updatedAt=string(),
    lastLoginAt=string(),
    lastLoginIp=internal(string()),
    orderCount=integer(),
    lifetimeValueCents=integer(),
    referralCode=string(),
    referredBy=string(nullable=True),
    tags=list_of(string()),
    deviceIds=personal(list_of(string())),
    supportTier=string(enum=("standard", "priority")),
    fraudScore=internal(number()),
    riskBand=internal(string(enum=("low", "medium", "high"))),
    internalSegmentTag=internal(string()),
    internalNotes=internal(string(nullable=True)),
    crmId=internal(string()),
)

ORDER = obj(
    orderId=string(),
    status=string(enum=ORDER_STATUSES),
    placedAt=string(),
    estimatedDelivery=string(nullable=True),
    itemCount=integer(),
    lineItems=list_of(obj(sku=string(), quantity=integer(), unitPriceCents=integer())),
    totalCents=integer(),
    discountCents=integer(),
    taxCents=integer(),
    currency=string(),
    carrier=string(),
    trackingNumber=string(nullable=True),
    shippingAddressId=personal(string()),
    paymentMethod=string(),
    channel=string(),
    giftWrap=boolean(),
    warehouseId=internal(string()),
    fulfillmentCenter=string(),
    costCents=internal(integer()),
    internalMarginCents=internal(integer()),
)

PRODUCT = obj(
    productId=string(),
    sku=string(),
    title=string(),
    description=string(),
    brand=string(),
    category=string(),
    priceCents=integer(),
    priceFormatted=string(),
    currency=string(),
    thumbnailUrl=string(),
    imageUrls=list_of(string()),
    rating=number(),
    reviewCount=integer(),
    inStock=boolean(),
    supplierId=internal(string()),
    costPrice=internal(number()),
    warehouseId=internal(string()),
    weightGrams=integer(),
    dimensions=nested(obj(widthMm=integer(), heightMm=integer(), depthMm=integer())),
    tags=list_of(string()),
    createdAt=string(),
)

RECOMMENDATION = obj(
    productId=string(),
    title=string(),
    thumbnailUrl=string(),
    priceFormatted=string(),
    priceCents=integer(),
    currency=string(),
    brand=string(),
    category=string(),
    inStock=boolean(),
    rank=integer(),
    score=number(),
    reason=string(),
    modelVersion=string(),
    experimentId=string(),
    costPrice=internal(number()),
)

# The web dashboard enriches each recommendation with its catalog product; the product
# is absent when the enrichment stage failed (the page degrades, it does not fail).
ENRICHED_RECOMMENDATION = obj(
    **dict(RECOMMENDATION.fields),
    product=nested(PRODUCT, nullable=True, always_present=False),
)

CATEGORY = obj(categoryId=string(), name=string())
