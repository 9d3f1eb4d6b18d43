"""bench/http.py's parsing of wrk's report and its summary of a connection sweep."""

from __future__ import annotations

import pytest

from bench.http import _peaks, parse_wrk

WRK = """\
Running 8s test @ http://127.0.0.1:3000/noop
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.41ms  512.00us   9.80ms   80.00%
    Req/Sec    13.10k   600.00    14.00k    70.00%
  Latency Distribution
     50%    2.31ms
     75%    2.60ms
     90%    3.00ms
     99%  850.00us
  104800 requests in 8.00s, 17.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  13100.50
Transfer/sec:      2.13MB
"""


def test_parse_wrk_reads_rate_latencies_and_errors() -> None:
    got = parse_wrk(WRK)
    assert got["rps"] == 13100.5 and got["requests"] == 104800
    assert got["p50_ms"] == pytest.approx(2.31) and got["p99_ms"] == pytest.approx(0.85)
    assert got["non_2xx"] == 4 and got["socket_errors"] == 3


def test_parse_wrk_refuses_a_report_without_a_rate() -> None:
    with pytest.raises(RuntimeError, match="no rate"):
        parse_wrk("unable to connect to 127.0.0.1:3000 Connection refused\n")


def test_peaks_compare_each_servers_best_rate_over_the_sweep() -> None:
    runs = [
        {"connections": 32, "gateway_rps": 13000, "bare_rps": 34000, "ratio": 0.382},
        {"connections": 64, "gateway_rps": 16000, "bare_rps": 36000, "ratio": 0.444},
        {"connections": 128, "gateway_rps": 18000, "bare_rps": 35000, "ratio": 0.514},
    ]
    assert _peaks(runs) == {
        "gateway_rps": 18000,
        "gateway_connections": 128,
        "bare_rps": 36000,
        "bare_connections": 64,
        "ratio": 0.5,
    }
