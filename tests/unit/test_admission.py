"""admission.py: the in-flight cap, each token's bucket and the health line, with the clock
given (no sleeps); and the settings that set them."""

import pytest

from wvo_mcp.config import Settings
from wvo_mcp.edge.http_limits import (
    COUNTED,
    MAX_BUCKETS,
    OVERLOADED,
    RATE_LIMITED,
    Admission,
    Limits,
    store_waits,
)
from wvo_mcp.errors import Overloaded, ValidationFailed


def test_the_cap_admits_up_to_its_size_and_frees_a_place_per_answer() -> None:
    admission = Admission(Limits(max_inflight=2, rate=0))
    assert admission.enter() is None and admission.enter() is None
    refused = admission.enter()
    assert refused is not None
    assert (refused.status, refused.code, refused.retry_after) == (503, OVERLOADED, 1)
    assert "as many requests in flight as it takes (WVO_HTTP_MAX_INFLIGHT)" in refused.message
    assert "2" not in refused.message and set(refused.data) == {"limit", "retryAfterSeconds"}
    assert "nothing was done. Retry after 1 s" in refused.message
    assert admission.in_flight == 2  # a refusal takes no place
    admission.leave()
    assert admission.enter() is None
    assert admission.refused_inflight == 1


def test_a_quarter_of_the_cap_in_flight_is_crowded_eight_at_least() -> None:
    admission = Admission(Limits(max_inflight=256, rate=0))
    for _ in range(63):
        admission.enter()
    assert not admission.crowded()
    admission.enter()
    assert admission.crowded()  # 64 of 256: claims now wait, held work goes on
    small = Admission(Limits(max_inflight=12, rate=0))
    for _ in range(7):
        small.enter()
    assert not small.crowded()
    small.enter()
    assert small.crowded()
    assert not Admission(Limits(max_inflight=0)).crowded()  # no cap, no crowd


def test_no_cap_admits_everything() -> None:
    admission = Admission(Limits(max_inflight=0))
    assert all(admission.enter() is None for _ in range(10_000))


def test_a_token_spends_its_burst_then_waits_for_its_rate() -> None:
    admission = Admission(Limits(rate=2, burst=3))
    assert [admission.take("t1", "claude-1", 100.0) for _ in range(3)] == [None] * 3
    refused = admission.take("t1", "claude-1", 100.0)
    assert refused is not None
    assert (refused.status, refused.code, refused.retry_after) == (429, RATE_LIMITED, 1)
    assert refused.message.startswith("token claude-1 is over its rate limit: 2 requests a")
    assert refused.data["retryAfterSeconds"] == 1
    assert admission.take("t2", "claude-2", 100.0) is None  # per token
    assert admission.take("t1", "claude-1", 100.4) is not None  # 0.8 of a request back
    assert admission.take("t1", "claude-1", 100.5) is None  # one whole request back
    assert admission.take("t1", "claude-1", 100.5) is not None
    assert admission.take("t1", "claude-1", 110.0) is None  # refilled to the burst, no more
    assert [admission.take("t1", "claude-1", 110.0) for _ in range(3)][-1] is not None


def test_retry_after_is_the_wait_for_one_request_in_whole_seconds() -> None:
    admission = Admission(Limits(rate=0.1, burst=1))
    assert admission.take("t", "slow", 0.0) is None
    refused = admission.take("t", "slow", 2.5)
    assert refused is not None and refused.retry_after == 8  # 0.75 of a request at 0.1/s


def test_no_rate_never_refuses_nor_keeps_buckets() -> None:
    admission = Admission(Limits(rate=0))
    assert all(admission.take("t", "x", 0.0) is None for _ in range(1000))
    assert admission.buckets == {}


def test_buckets_stay_bounded_forgetting_full_ones_first() -> None:
    admission = Admission(Limits(rate=1, burst=2))
    for i in range(MAX_BUCKETS - 1):
        admission.take(f"idle{i}", "idle", 0.0)
    admission.take("busy", "busy", 9.5)
    admission.take("busy", "busy", 9.5)
    admission.take("new", "new", 10.0)  # the table is full: the full (idle) buckets go
    assert sorted(admission.buckets) == ["busy", "new"]
    assert admission.take("busy", "busy", 10.0) is not None  # its debt is remembered


def test_the_health_line_says_which_limit_is_near() -> None:
    admission = Admission(Limits(max_inflight=10, rate=1, burst=10))
    for _ in range(9):
        admission.enter()
    for _ in range(9):
        admission.take("k1", "ci-bot", 50.0)
    admission.take("k2", "claude-1", 50.0)
    line = admission.line(50.0)
    assert line.startswith("admission: 9 of 10 requests in flight (WVO_HTTP_MAX_INFLIGHT)")
    assert "nearest their rate limit: ci-bot at 90 %, claude-1 at 10 %" in line
    assert "near a limit: the in-flight cap, token ci-bot's rate" in line
    assert "refused since start: 0 at the cap, 0 over a rate" in line
    # Time refills: five seconds later ci-bot is at 40 % and nothing is near.
    assert "near a limit: the in-flight cap;" in admission.line(55.0)


def test_the_health_line_hides_other_tokens_names_unless_asked() -> None:
    admission = Admission(Limits(rate=1, burst=10))
    admission.take("k1", "ci-bot", 0.0)
    admission.take("k2", "claude-1", 0.0)
    line = admission.line(0.0, own="claude-1", names=False)
    assert "claude-1 at 10 % (and 1 other token)" in line and "ci-bot" not in line


def test_the_health_line_without_limits() -> None:
    line = Admission(Limits(max_inflight=0, rate=0)).line(0.0)
    assert line == (
        "admission: 0 requests in flight (no cap); no rate limit per token; near a limit: "
        "none; refused since start: 0 at the cap, 0 over a rate"
    )


def test_token_checks_waiting_on_the_store_never_take_held_works_places() -> None:
    admission = Admission(Limits(max_inflight=12, rate=0))
    for _ in range(12):  # the whole cap's requests, their tokens not seen before
        assert admission.enter() is None
        assert admission.lookup()
    assert (admission.in_flight, admission.lookups) == (0, 12)
    assert not admission.lookup()  # the token checks' places all taken
    for _ in range(12):  # held work still has every place of the cap
        assert admission.enter() is None
    assert admission.enter() is not None
    line = admission.line(0.0)
    assert "0 of 8 claims, 12 of 12 token checks waiting on the database" in line
    assert "refused since start: 1 at the cap, 0 over a rate, 1 with the token checks'" in line
    for _ in range(12):  # checked: back in held work's places, past the cap (they were let in)
        admission.looked_up()
    assert (admission.in_flight, admission.lookups) == (24, 0)
    for _ in range(24):
        admission.leave()
    assert admission.in_flight == 0


@pytest.mark.anyio
async def test_store_waits_count_the_request_being_served_only() -> None:
    admission = Admission(Limits(max_inflight=8, rate=0))
    waits = store_waits(admission)
    async with waits():  # no request counted (the dashboard's): no place
        assert admission.lookups == 0
    marked = COUNTED.set(True)
    try:
        for _ in range(8):
            assert admission.enter() is None
        async with waits():
            assert (admission.in_flight, admission.lookups) == (7, 1)
            for _ in range(7):
                assert admission.lookup()
            with pytest.raises(Overloaded, match="as many token checks waiting on the database"):
                async with waits():
                    pass
            assert (admission.in_flight, admission.lookups) == (0, 8)  # the refused: no move
        assert (admission.in_flight, admission.lookups) == (1, 7)
    finally:
        COUNTED.reset(marked)


def test_settings_defaults_and_overrides() -> None:
    defaults = Settings.from_env({})
    assert (defaults.http_max_inflight, defaults.http_rate_per_token) == (256, 50.0)
    assert defaults.http_burst_per_token == 500
    given = Settings.from_env(
        {"WVO_HTTP_MAX_INFLIGHT": "0", "WVO_HTTP_RATE_PER_TOKEN": "0.5",
         "WVO_HTTP_BURST_PER_TOKEN": "7"}
    )  # fmt: skip
    assert (given.http_max_inflight, given.http_rate_per_token) == (0, 0.5)
    assert given.http_burst_per_token == 7


@pytest.mark.parametrize(
    ("name", "raw"),
    [("WVO_HTTP_MAX_INFLIGHT", "-1"), ("WVO_HTTP_RATE_PER_TOKEN", "-2"),
     ("WVO_HTTP_BURST_PER_TOKEN", "0"), ("WVO_HTTP_MAX_INFLIGHT", "many")],
)  # fmt: skip
def test_bad_limits_name_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValidationFailed, match=name):
        Settings.from_env({name: raw})
