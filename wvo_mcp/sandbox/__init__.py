"""Run an agent's command isolated and bounded, with one result shape whatever the backend.

Backends: Docker (an engine answers and the image is present), bubblewrap with cgroups,
or none (only with WVO_SANDBOX_ALLOW_UNISOLATED=1), chosen by sandbox/backends.py; see
docs/sandbox.md.
"""

import dataclasses
import threading

from wvo_mcp.config import Settings
from wvo_mcp.models import SandboxResult
from wvo_mcp.sandbox import backends, bwrap, none, protect
from wvo_mcp.sandbox.backends import NOT_ISOLATED_HINT, doctor
from wvo_mcp.sandbox.outcome import BackendCheck, cli_exit_code, result
from wvo_mcp.sandbox.request import Request, validate
from wvo_mcp.sandbox.toolchain import Toolchain
from wvo_mcp.scratch_dirs import owner

__all__ = [
    "NOT_ISOLATED_HINT",
    "BackendCheck",
    "Request",
    "SandboxResult",
    "cli_exit_code",
    "doctor",
    "run",
]


def run(request: Request, settings: Settings, stop: threading.Event | None = None) -> SandboxResult:
    """Run one command to its end, its timeout or its limits (blocking: call it from a
    worker thread in async code); `stop`, set from another thread, ends it as a timeout
    (bwrap and none; Docker runs on to its timeout)."""
    request = validate(request)
    layout = protect.layout(settings, request.workspace)
    backend = backends.choose_backend(settings)
    size = settings.sandbox_output_bytes
    if backend == "docker":
        # Its image brings its own toolchain: a host's .venv would not run on its libraries.
        request = dataclasses.replace(request, toolchain=Toolchain())
        outcome = backends.docker().run(request, settings.sandbox_image, size, layout)
    elif backend == "bwrap":
        outcome = bwrap.run(request, size, layout, stop, owner=owner(settings.state_root))
    else:
        outcome = none.run(request, size, stop, owner=owner(settings.state_root))
    return result(backend, outcome, memory_mb=request.memory_mb, pids_limit=request.pids_limit)
