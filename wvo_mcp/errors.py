"""The package's own exceptions, each one a tool error an agent can act on.

The package's own exceptions, mapped to MCP tool errors in one place (server.py).

WvoError
├── ValidationFailed     input is well-typed but not acceptable (cycle, unknown dep, ...)
├── NotFound             no such task / checkpoint
├── IllegalTransition    the state machine refuses the move
├── LeaseLost            the caller no longer holds the task
├── VerificationFailed   the task's verify_command did not pass: `done` refused
├── Conflict             an optimistic write met a newer version
├── Busy                 the database stayed locked past the retry deadline
│   └── Overloaded       a call found no turn within the wait bound: nothing was done
├── StoreUnavailable     the database cannot be reached, or a commit's outcome is unknown
├── SchemaTooNew         the database was written by a newer wvo-mcp
└── Fault                a remote (git or a forge) could not be asked: nothing moved
"""


class WvoError(Exception):
    """wvo-mcp error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class ValidationFailed(WvoError):
    """The input was refused."""


class NotFound(WvoError):
    """No such object."""


class IllegalTransition(WvoError):
    """That status change is not allowed."""


class LeaseLost(WvoError):
    """The lease on this task is no longer yours."""


class VerificationFailed(WvoError):
    """The task's verify_command did not pass in the sandbox; the task stays in progress."""


class Conflict(WvoError):
    """Someone else wrote first; read the current version and try again."""


class Busy(WvoError):
    """The database stayed locked by other writers; retry shortly."""


class Overloaded(Busy):
    """No turn, lock or connection came within the wait bound (rules/claim_admission.py): nothing
    of this call was done. `why`: what did not come in time; `retry_after`: seconds after
    which to try again (a second gives the turns ahead time to go by)."""

    def __init__(self, why: str, retry_after: float = 1.0) -> None:
        super().__init__(f"{why}; nothing of this call was done; retry in {retry_after:g} s")
        self.why = why
        self.retry_after = retry_after


class StoreUnavailable(WvoError):
    """The database cannot be reached; retry when it is back."""


class SchemaTooNew(WvoError):
    """The database was created by a newer wvo-mcp; upgrade wvo-mcp to open it."""


class Fault(WvoError):
    """The remote could not be asked: unreachable, too slow, our credentials refused, a
    rate limit, or a change it refused for a reason of its own. Nothing moved because of it."""

    code = "remote_fault"

    def __init__(self, kind: str, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.kind = kind  # unreachable | timeout | auth | refused | missing | limited
        self.retry_after = retry_after  # seconds the remote asked us to wait (0: none)
