"""Cache keys: versioned by the serving contract, and no id can break or collide them."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregation.cachekeys import InvalidKeyPart, encode_id, shared_key, user_key
from contracts.serving import ServingContract

CONTRACT = ServingContract(
    client="mobile",
    endpoint="home",
    major=1,
    minor=3,
    version_id=7,
    fingerprint="ab12cd34" * 8,
    plan=None,
    cache_scope="per_user",
    cache_ttl_seconds=30,
    cache_jitter_percent=10,
    cache_stale_grace_seconds=300,
)
KEY_FORMAT = re.compile(r"^bff:mobile:home:v1\.3:ab12cd34:(u|shared):[A-Za-z0-9._~%#-]+$")


def test_key_carries_the_serving_version_and_fingerprint() -> None:
    assert user_key("bff", CONTRACT, "usr_9821") == "bff:mobile:home:v1.3:ab12cd34:u:usr_9821"
    assert shared_key("bff", CONTRACT, "prd_1") == "bff:mobile:home:v1.3:ab12cd34:shared:prd_1"


def test_a_version_bump_moves_to_a_new_key() -> None:
    bumped = replace(CONTRACT, minor=4, fingerprint="ffee0011" * 8)
    assert user_key("bff", bumped, "usr_1") != user_key("bff", CONTRACT, "usr_1")


@pytest.mark.parametrize("missing", [None, ""])
def test_per_user_key_needs_a_user(missing) -> None:
    with pytest.raises(InvalidKeyPart):
        user_key("bff", CONTRACT, missing)


@pytest.mark.parametrize("raw", ["a:b", "a b", "a\nb", "../etc", "ü", "a%3Ab", "x" * 500, "#x"])
def test_hostile_ids_stay_inside_the_scope_segment(raw) -> None:
    key = user_key("bff", CONTRACT, raw)
    assert KEY_FORMAT.match(key), key
    assert key.count(":") == 6


@given(st.text(min_size=1, max_size=300), st.text(min_size=1, max_size=300))
def test_distinct_ids_never_share_a_key(a: str, b: str) -> None:
    if a != b:
        assert encode_id(a) != encode_id(b)


@given(st.text(min_size=1, max_size=300))
def test_every_id_gives_a_well_formed_key(raw: str) -> None:
    assert KEY_FORMAT.match(user_key("bff", CONTRACT, raw))
    assert KEY_FORMAT.match(shared_key("bff", CONTRACT, raw))
    assert len(encode_id(raw)) <= 100
