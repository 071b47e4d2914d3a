"""Admission control for `serve --http`: caps on requests in flight and per caller.

Admission control for `serve --http`: a cap on the requests one process has in flight and
a token bucket per caller, decided here without I/O (the clock is an argument), so a flood is
refused before it costs anything and never queues without bound (docs/http.md). A token's
check waiting on the store and a claim have places of their own, so that held work always has
the cap's.

A refusal says what was wrong and what would be accepted, in words an agent can act on."""

import math
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from wvo_mcp.errors import Overloaded

# JSON-RPC error codes of our own, in the range JSON-RPC leaves to implementations (-32000 to
# -32099) and clear of those MCP names (-32000, -32001, -32020 to -32022, -32042).
OVERLOADED = -32050
RATE_LIMITED = -32051

NEAR = 0.8  # a limit this full is "near" in the health line
CROWDED_AT_LEAST = 8  # requests in flight before a process counts as crowded
SHOWN = 3  # tokens named in the health line
# Buckets are dropped once there are this many: a full bucket and a missing one are the same,
# so only tokens that called in the last burst ÷ rate seconds lose anything (their debt).
MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class Limits:
    """`max_inflight` requests at once per process (0: no cap); per token, `rate` requests a
    second on average (0: no limit) with bursts of up to `burst`."""

    max_inflight: int = 256
    rate: float = 50.0
    burst: int = 500


@dataclass(frozen=True)
class Refusal:
    """A request turned away: its HTTP status, Retry-After (whole seconds) and JSON-RPC error."""

    status: int
    code: int
    retry_after: int
    message: str
    data: dict[str, Any]


@dataclass
class _Bucket:
    name: str
    level: float  # requests that may still be made at once
    at: float  # when `level` was last brought up to date


# Whether the request being served is counted in held work's places (set by
# edge/http_server.InFlightCap; its token's check, waiting on the store, leaves them).
COUNTED: ContextVar[bool] = ContextVar("wvo_counted", default=False)


@dataclass
class Admission:
    """The state of one process's limits."""

    limits: Limits
    in_flight: int = 0  # requests in flight but claims and token checks (held work's places)
    claims: int = 0  # claims in flight, in their own share (`claim_place`)
    lookups: int = 0  # token checks waiting on the store, in their own share (`lookup`)
    refused_inflight: int = 0
    refused_rate: int = 0
    refused_lookups: int = 0
    buckets: dict[str, _Bucket] = field(default_factory=dict)

    def enter(self) -> Refusal | None:
        """Admit one more request in flight (then call `leave` when it is answered), or refuse."""
        cap = self.limits.max_inflight
        if cap and self.in_flight >= cap:
            self.refused_inflight += 1
            return Refusal(
                status=503,
                code=OVERLOADED,
                retry_after=1,
                # Said before the token's check: no figures of the load (docs/http.md).
                message=(
                    "this server has as many requests in flight as it takes "
                    "(WVO_HTTP_MAX_INFLIGHT); nothing was done. Retry after 1 s, or through "
                    "another server of the same deployment"
                ),
                data={"limit": "WVO_HTTP_MAX_INFLIGHT", "retryAfterSeconds": 1},
            )  # fmt: skip
        self.in_flight += 1
        return None

    def leave(self) -> None:
        self.in_flight -= 1

    def lookup(self) -> bool:
        """A request `enter`ed waits on the store for its token's check: out of held work's
        places (it may be a claim, whose place is not theirs) into one of the token checks'
        own, as many as held work's (a client's first requests come at once, and all wait
        for lookups); False, taking none, when those are all taken. Then `looked_up`."""
        cap = self.limits.max_inflight
        if cap and self.lookups >= cap:
            self.refused_lookups += 1
            return False
        self.lookups += 1
        self.in_flight -= 1
        return True

    def looked_up(self) -> None:
        """Its token's check done: back in held work's places, past the cap too (it was let
        in), where it is served, or found a claim (`claim_found`) with no wait between."""
        self.lookups -= 1
        self.in_flight += 1

    def claim_cap(self) -> int:
        """Claims in flight at most (0: no cap): the quarter of the cap at which a process
        counts as crowded (8 at least), besides the cap held work has to itself."""
        cap = self.limits.max_inflight
        return max(CROWDED_AT_LEAST, cap // 4) if cap else 0

    def claim_found(self) -> None:
        """A request `enter`ed is a claim: it leaves held work's places, which are theirs
        whatever the claims' number (edge/http_claims.py); then `claim_place`."""
        self.in_flight -= 1

    def claim_place(self) -> bool:
        """One of the claims' own places, if one is free (then `claim_done(True)`)."""
        cap = self.claim_cap()
        if cap and self.claims >= cap:
            return False
        self.claims += 1
        return True

    def claim_done(self, counted: bool) -> None:
        """A claim answered (`counted`: it had one of the claims' places); its request's
        `leave` follows."""
        self.claims -= counted
        self.in_flight += 1

    def crowded(self) -> bool:
        """A quarter of the cap in flight (8 at least): requests queue in this process, and
        claims are refused before held work reaches the cap (rules/claim_admission.py)."""
        cap = self.limits.max_inflight
        return bool(cap) and self.in_flight >= max(CROWDED_AT_LEAST, cap // 4)

    def take(self, key: str, name: str, now: float) -> Refusal | None:
        """Spend one request of the token `key` (shown as `name`) at time `now`, or refuse."""
        rate, burst = self.limits.rate, self.limits.burst
        if not rate:
            return None
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            bucket = self.buckets[key] = _Bucket(name, float(burst), now)
        else:
            bucket.level = min(float(burst), bucket.level + (now - bucket.at) * rate)
            bucket.at = now
        if bucket.level >= 1:
            bucket.level -= 1
            return None
        self.refused_rate += 1
        wait = max(1, math.ceil((1 - bucket.level) / rate))
        return Refusal(
            status=429,
            code=RATE_LIMITED,
            retry_after=wait,
            message=(
                f"token {name} is over its rate limit: {_rate(rate)} requests a second, bursts "
                f"of {burst} (WVO_HTTP_RATE_PER_TOKEN, WVO_HTTP_BURST_PER_TOKEN); nothing was "
                f"done. Retry after {wait} s, and spread calls out to stay under {_rate(rate)}/s"
            ),
            data={"limit": "WVO_HTTP_RATE_PER_TOKEN", "ratePerSecond": rate, "burst": burst,
                  "retryAfterSeconds": wait},
        )  # fmt: skip

    def used(self, now: float) -> list[tuple[str, float]]:
        """Each token's share of its burst spent at `now`, fullest first (0 for none)."""
        rate, burst = self.limits.rate, self.limits.burst
        shares = [
            (b.name, 1 - min(float(burst), b.level + (now - b.at) * rate) / burst)
            for b in self.buckets.values()
        ]
        return sorted((s for s in shares if s[1] > 0), key=lambda s: -s[1])

    def line(self, now: float, own: str | None = None, names: bool = True) -> str:
        """The health line: in flight against the cap, the tokens nearest their rate limit
        (by name only with `names`; `own` is always shown), which limit is near, refusals."""
        cap = self.limits.max_inflight
        parts = [
            f"{self.in_flight} of {_requests(cap)} in flight (WVO_HTTP_MAX_INFLIGHT), and "
            f"{self.claims} of {self.claim_cap()} claims, {self.lookups} of {cap} token checks "
            "waiting on the database"
            if cap
            else f"{_requests(self.in_flight + self.claims + self.lookups)} in flight (no cap)"
        ]
        near = ["the in-flight cap"] if cap and self.in_flight >= NEAR * cap else []
        if self.limits.rate:
            used = self.used(now)
            shown = [(n, s) for n, s in used if names or n == own][:SHOWN]
            hidden = len(used) - len(shown)
            listed = ", ".join(f"{n} at {round(100 * s)} %" for n, s in shown) or "none"
            if hidden:
                listed += f" (and {hidden} other token{'s' if hidden > 1 else ''})"
            parts.append(
                f"per token {_rate(self.limits.rate)}/s, bursts of {self.limits.burst}; nearest "
                f"their rate limit: {listed}"
            )
            near += [f"token {n}'s rate" for n, s in shown if s >= NEAR]
        else:
            parts.append("no rate limit per token")
        parts.append(f"near a limit: {', '.join(near) or 'none'}")
        refused = (
            f"refused since start: {self.refused_inflight} at the cap, {self.refused_rate} "
            "over a rate"
        )
        if cap:
            refused += f", {self.refused_lookups} with the token checks' places taken"
        parts.append(refused)
        return "admission: " + "; ".join(parts)

    def _forget_full(self, now: float) -> None:
        rate, burst = self.limits.rate, float(self.limits.burst)
        full = [k for k, b in self.buckets.items() if b.level + (now - b.at) * rate >= burst]
        for key in full:
            del self.buckets[key]
        if len(self.buckets) >= MAX_BUCKETS:  # all busy: a table this size is a flood of
            self.buckets.clear()  # tokens, and forgetting debts beats growing without bound


LOOKUPS_TAKEN = (
    "this server has as many token checks waiting on the database as it takes "
    "(WVO_HTTP_MAX_INFLIGHT)"
)


class CheckHeldBack(Overloaded):
    """A token's check held back by this server's own limits, not the database's: its `why`
    names no figure of the load nor of the database, so it is told to a caller not yet
    known (http_server.unavailable)."""


def store_waits(admission: Admission) -> Callable[[], AbstractAsyncContextManager[None]]:
    """What a token check entering a wait on the store enters (access.StoreVerifier): the
    request being served in one of the token checks' places, out of held work's, or
    Overloaded (answered 503 with Retry-After) with those all taken. A check made for no
    request counted (the dashboard's) is counted in none."""

    @asynccontextmanager
    async def waiting() -> AsyncIterator[None]:
        if not COUNTED.get():
            yield
            return
        if not admission.lookup():
            raise CheckHeldBack(LOOKUPS_TAKEN)
        try:
            yield
        finally:
            admission.looked_up()

    return waiting


def _requests(n: int) -> str:
    return f"{n} request{'' if n == 1 else 's'}"


def _rate(rate: float) -> str:
    return f"{rate:g}"
