"""When the call being served arrived, so all its waits share one bound from then.

When the call being served reached this server, from which its waits share one bound.

The waits a call makes before doing any work share one bound from its arrival
(rules/claim_admission: WAIT_BOUND_S, HELD_WAIT_S; docs/http.md, "Past capacity"), so a call that
waited for its token's check, or for a busy event loop, does not wait its whole bound again
for a connection. The HTTP edge marks a request as it arrives
(edge/http_server.InFlightCap); a call made otherwise (stdio, in-process) counts from when
it first asks."""

import time
from contextvars import ContextVar, Token

# Past its bound a call still takes a connection or a lock that is free: it is refused only
# when it would have to wait (a floor a busy host's hiccup between two lines does not reach).
FLOOR_S = 0.02

_arrived: ContextVar[float | None] = ContextVar("wvo_arrived", default=None)


def mark(at: float | None = None) -> Token[float | None]:
    """The call being served arrived `at` (time.monotonic()), else now; `unmark` as it ends."""
    return _arrived.set(time.monotonic() if at is None else at)


def unmark(token: Token[float | None]) -> None:
    _arrived.reset(token)


def arrived() -> float:
    """When the call being served reached this server (time.monotonic()), else now."""
    at = _arrived.get()
    return time.monotonic() if at is None else at


def left(bound: float, since: float | None = None) -> float:
    """The seconds the call's next wait may take: what is left of `bound` counted from
    `since` (work done, a new bound), else from its arrival; never under FLOOR_S."""
    start = arrived() if since is None else since
    return max(FLOOR_S, bound - (time.monotonic() - start))
