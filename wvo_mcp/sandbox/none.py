"""The backend with no isolation, on explicit opt-in: timeout, limits and kill still hold.

No isolation, only by explicit opt-in: the timeout, limits and tree kill still apply
(through cgroups when writable here, else the process group)."""

import threading

from wvo_mcp.sandbox import cgroups, runner, toolchain
from wvo_mcp.sandbox.environment import command_env
from wvo_mcp.sandbox.outcome import BackendCheck, Outcome
from wvo_mcp.sandbox.request import Request, argv


def check(allowed: bool) -> BackendCheck:
    if not allowed:
        return BackendCheck(
            "none", False, "no isolation; allowed only with WVO_SANDBOX_ALLOW_UNISOLATED=1"
        )
    return BackendCheck(
        "none",
        True,
        "NO isolation (WVO_SANDBOX_ALLOW_UNISOLATED=1): the host's files and network are "
        f"reachable; {cgroups.capabilities()}",
    )


def run(
    request: Request, output_bytes: int, stop: threading.Event | None = None, *, owner: str = ""
) -> Outcome:
    toolchain.link(request.toolchain, request.workspace)
    group = cgroups.open_group(request.memory_mb, request.cpus, request.pids_limit, owner=owner)
    try:
        return runner.execute(
            argv(request),
            env=command_env(request),
            cwd=request.workspace / request.cwd,
            timeout_s=request.timeout_s,
            output_bytes=output_bytes,
            group=group,
            signal_as_status=False,
            stop=stop,
        )
    finally:
        if group is not None:
            group.remove()
