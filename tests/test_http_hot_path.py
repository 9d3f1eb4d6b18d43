"""The gateway's per-request shortcuts (cached date formatting, PRNG ids, one-pass
forwarding headers) give exactly what the plain versions gave."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.http.request import (
    RequestData,
    http_request_id,
    request_times,
    trace_id,
)
from adapters.samples_aws import clf, epoch_ms
from tests.http_reference import forwarded

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(st.integers(min_value=0, max_value=4_102_444_800 * 10**6 - 1))
def test_request_times_match_the_formatters(micros: int) -> None:
    at = EPOCH + timedelta(microseconds=micros)
    assert request_times(at.timestamp()) == (clf(at), epoch_ms(at))


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_request_times_of_a_clock_reading_are_those_of_its_datetime(epoch_s: float) -> None:
    at = datetime.fromtimestamp(epoch_s, UTC)  # rounds to the microsecond, half to even
    assert request_times(epoch_s) == (clf(at), epoch_ms(at))


def test_request_times_of_one_second_share_the_text_but_not_the_milliseconds() -> None:
    at = datetime(2026, 5, 1, 12, 34, 56, 789_000, tzinfo=UTC)
    assert request_times(at.timestamp()) == ("01/May/2026:12:34:56 +0000", 1_777_638_896_789)
    later = at + timedelta(milliseconds=100)
    assert request_times(later.timestamp()) == (
        "01/May/2026:12:34:56 +0000",
        1_777_638_896_889,
    )


def test_ids_have_api_gateways_shapes_and_differ() -> None:
    ids = {http_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    for rid in list(ids)[:100]:
        assert len(rid) == 16 and len(base64.b64decode(rid)) == 11
    at = datetime(2026, 5, 1, tzinfo=UTC).timestamp()
    traces = {trace_id(at) for _ in range(1000)}
    assert len(traces) == 1000
    assert all(re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", t) for t in traces)


def test_forwarded_headers() -> None:
    headers = (
        ("Host", "h"),
        ("X-Forwarded-For", "1.1.1.1"),
        ("x-forwarded-for", "2.2.2.2"),
        ("X-Forwarded-Port", "1"),
        ("X-Forwarded-Proto", "https"),
        ("X-Amzn-Trace-Id", "Root=1-mine"),
    )
    req = RequestData("GET", "/", "", headers, "9.9.9.9", 3000)
    assert forwarded(req, lower=False) == [
        ("Host", "h"),
        ("X-Amzn-Trace-Id", "Root=1-mine"),  # the client's trace id is kept
        ("X-Forwarded-For", "2.2.2.2, 9.9.9.9"),  # the last value, then the peer
        ("X-Forwarded-Port", "3000"),
        ("X-Forwarded-Proto", "http"),
    ]
    plain = RequestData("GET", "/", "", (("Host", "h"),), "9.9.9.9", 3000)
    names = [k for k, _ in forwarded(plain, lower=True)]
    assert names == ["Host", "x-forwarded-for", "x-forwarded-port", "x-forwarded-proto",
                     "x-amzn-trace-id"]  # fmt: skip


def test_an_empty_query_string_parses_to_nothing_and_junk_still_fails() -> None:
    assert RequestData("GET", "/", "", (), "", 1).query() == {}
    with pytest.raises(UnicodeDecodeError):
        RequestData("GET", "/", "a=%ff", (), "", 1).query()
