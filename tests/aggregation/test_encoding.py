"""Compressed bodies: negotiation, the spliced gzip and zstd bodies, and the wire over real HTTP."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import zlib

import httpx
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from aggregation import encoding
from aggregation.tokens import mint_token

# -- negotiation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("gzip", "gzip"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip;q=1.0, zstd;q=0.5", "gzip"),
        ("x-gzip", "gzip"),
        ("ZSTD", "zstd"),
        ("*", "zstd"),
        ("zstd;q=0, *", "gzip"),
        ("gzip;q=0", "identity"),
        ("identity", "identity"),
        ("br, deflate", "identity"),
        ("", "identity"),
        ("gzip;q=nonsense", "identity"),
        (",,;;q=,", "identity"),
    ],
)
def test_negotiation_follows_q_values_and_prefers_zstd_on_a_tie(accept, coding) -> None:
    assert encoding.negotiate(accept) == coding


# -- the spliced bodies -------------------------------------------------------------------

heads = st.binary(max_size=70_000).map(lambda b: b'{"meta":' + b)
tails = st.binary(min_size=1, max_size=5_000)


@given(heads, tails)
def test_a_spliced_gzip_body_is_one_member_every_decoder_reads_whole(head, tail) -> None:
    blocks, _ = encoding.precompress(tail)
    body = encoding.gzip_body(head, tail, blocks)
    assert gzip.decompress(body) == head + tail
    # One member, nothing after it: decoders that stop after the first member (httpx's)
    # still get all of it.
    decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
    assert decoder.decompress(body) == head + tail
    assert decoder.eof and decoder.unused_data == b""


def unzstd(body: bytes) -> bytes:
    """Every frame of a zstd body, as RFC 8878 says a body is decoded."""
    return zstandard.ZstdDecompressor().stream_reader(body, read_across_frames=True).read()


@given(heads, tails)
def test_a_spliced_zstd_body_decodes_to_the_whole_body(head, tail) -> None:
    _, frame = encoding.precompress(tail)
    body = encoding.zstd_body(head, frame)
    assert unzstd(body) == head + tail


def test_httpx_decodes_both_codings_fed_in_small_pieces() -> None:
    from httpx._decoders import GZipDecoder, ZStandardDecoder

    head, tail = b'{"meta":{"a":1}', b',"user":{"name":"' + b"x" * 2000 + b'"}}'
    blocks, frame = encoding.precompress(tail)
    for decoder, body in (
        (GZipDecoder(), encoding.gzip_body(head, tail, blocks)),
        (ZStandardDecoder(), encoding.zstd_body(head, frame)),
    ):
        pieces = [decoder.decode(body[i : i + 7]) for i in range(0, len(body), 7)]
        assert b"".join(pieces) + decoder.flush() == head + tail


def test_small_sections_are_not_precompressed() -> None:
    assert encoding.compressed_forms(b'{"product":{"id":"p"}}') == (b"", b"")
    big = b'{"user":"' + b"y" * encoding.MIN_BYTES + b'"}'
    blocks, frame = encoding.compressed_forms(big)
    assert blocks and frame


# -- over real HTTP -----------------------------------------------------------------------


@pytest.fixture
def client(live_bff, demo_services):
    with httpx.Client(base_url=live_bff.url, timeout=30.0, trust_env=False) as http:
        yield http


def raw_get(client: httpx.Client, path: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """The response and its body as it came off the wire, not decoded."""
    with client.stream("GET", path, headers=headers) as response:
        return response, b"".join(response.iter_raw())


def home_headers(sub: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token('mobile', sub)}", **extra}


def downstream_bytes(demo_services, sub: str) -> int:
    """What the mobile home's three calls for ``sub`` carry, as the services send it."""
    calls = [
        ("user", f"/users/{sub}"),
        ("order", f"/users/{sub}/orders?limit=3"),
        ("recommendation", f"/users/{sub}/recommendations?limit=6"),
    ]
    total = 0
    for service, path in calls:
        answer = httpx.get(demo_services.urls[service] + path, headers=demo_services.headers())
        assert answer.status_code == 200
        total += len(answer.content)
    return total


@pytest.mark.parametrize(
    ("accept", "coding", "decode"),
    [
        ("gzip", "gzip", gzip.decompress),
        ("zstd", "zstd", lambda body: unzstd(body)),
    ],
)
def test_the_mobile_home_on_the_wire_is_compressed_when_asked(
    client, demo_services, accept, coding, decode
) -> None:
    sub = f"usr_71{len(coding)}"
    plain, plain_raw = raw_get(
        client, "/mobile/v1/home", **home_headers(sub, **{"Accept-Encoding": "identity"})
    )
    for _ in range(2):  # the miss (compressed at compute time), then a hit from the entry
        response, raw = raw_get(client, "/mobile/v1/home", **home_headers(sub, **{
            "Accept-Encoding": accept}))  # fmt: skip
        assert response.status_code == 200
        assert response.headers["Content-Encoding"] == coding
        assert response.headers["Vary"] == "Authorization, Accept-Encoding"
        assert response.headers["Content-Length"] == str(len(raw))
        assert response.headers["ETag"] == plain.headers["ETag"][:-1] + f'-{coding}"'
        body = json.loads(decode(raw))
        assert {k: v for k, v in body.items() if k != "meta"} == {
            k: v for k, v in json.loads(plain_raw).items() if k != "meta"
        }
        assert body["meta"]["cache"] == "hit"
    assert "Content-Encoding" not in plain.headers
    # SPEC section 10: at most 0.15 of the raw downstream bytes on the wire.
    assert len(raw) <= 0.15 * downstream_bytes(demo_services, sub)


def test_any_codings_tag_of_the_entry_answers_304(client) -> None:
    headers = home_headers("usr_715")
    gzipped, _ = raw_get(client, "/mobile/v1/home", **headers, **{"Accept-Encoding": "gzip"})
    again = client.get(
        "/mobile/v1/home",
        headers={
            **headers,
            "Accept-Encoding": "identity",
            "If-None-Match": gzipped.headers["ETag"],
        },
    )
    assert again.status_code == 304
    assert again.headers["ETag"] == gzipped.headers["ETag"].replace("-gzip", "")
    assert "Content-Encoding" not in again.headers


def test_a_small_body_is_sent_as_it_is(client) -> None:
    token = mint_token("partner", "ptn_encoding", scope="catalog:read")
    response, raw = raw_get(client, "/partner/v1/products/prd_74", **{
        "Authorization": f"Bearer {token}", "Accept-Encoding": "gzip, zstd"})  # fmt: skip
    assert response.status_code == 200
    assert len(raw) < encoding.MIN_BYTES
    assert "Content-Encoding" not in response.headers
    assert response.headers["Vary"] == "Accept-Encoding"
    json.loads(raw)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_decodes_what_it_asks_for(live_bff, demo_services) -> None:
    headers = home_headers("usr_716")
    plain = httpx.get(live_bff.url + "/mobile/v1/home", headers=headers).json()  # decoded
    result = subprocess.run(
        ["curl", "-sS", "--compressed", "-H", f"Authorization: {headers['Authorization']}",
         "-D", "-", live_bff.url + "/mobile/v1/home"],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert b"content-encoding: " in head.lower()
    assert json.loads(body)["user"] == plain["user"]
