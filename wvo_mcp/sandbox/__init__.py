"""Run an agent's command isolated and bounded, with one result shape whatever the backend.

Backends: Docker (an engine answers and the image is present), bubblewrap with cgroups,
or none (only with WVO_SANDBOX_ALLOW_UNISOLATED=1). See README "Sandboxed execution".
"""

import dataclasses
import threading
from types import ModuleType

from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.models import SandboxResult
from wvo_mcp.sandbox import bwrap, none, protect
from wvo_mcp.sandbox.limits import Request, validate
from wvo_mcp.sandbox.outcome import Backend, BackendCheck, cli_exit_code, result
from wvo_mcp.sandbox.toolchain import Toolchain
from wvo_mcp.scratch_dirs import owner

__all__ = ["BackendCheck", "Request", "SandboxResult", "cli_exit_code", "doctor", "run"]

NOT_ISOLATED_HINT = (
    "install bubblewrap (`apt-get install bubblewrap`), or start Docker with the image present, "
    "or set WVO_SANDBOX_ALLOW_UNISOLATED=1 to run without isolation"
)


def _docker() -> ModuleType:
    # Imported on first use: the docker package (and requests) would add ~40 ms and ~10 MB
    # to every server's start, and most never run a command.
    from wvo_mcp.sandbox import docker_backend

    return docker_backend


def choose(settings: Settings) -> Backend:
    """The backend for the next run, per WVO_SANDBOX_BACKEND; refuses when none may run."""
    wanted = settings.sandbox_backend
    if wanted == "docker":
        reason = _docker().unavailable(settings.sandbox_image)
        if reason is not None:
            raise ValidationFailed(f"WVO_SANDBOX_BACKEND=docker, but {reason}")
        return "docker"
    if wanted == "bwrap":
        found = bwrap.probe()
        if not found.usable:
            raise ValidationFailed(f"WVO_SANDBOX_BACKEND=bwrap, but {found.detail}")
        return "bwrap"
    if wanted == "none":
        if not settings.sandbox_allow_unisolated:
            raise ValidationFailed(
                "WVO_SANDBOX_BACKEND=none runs commands without isolation; it also needs "
                "WVO_SANDBOX_ALLOW_UNISOLATED=1"
            )
        return "none"
    docker_reason = _docker().unavailable(settings.sandbox_image)
    if docker_reason is None:
        return "docker"
    found = bwrap.probe()
    if found.usable:
        return "bwrap"
    if settings.sandbox_allow_unisolated:
        return "none"
    raise ValidationFailed(
        f"no isolated sandbox here (docker: {docker_reason}; bwrap: {found.detail}); "
        + NOT_ISOLATED_HINT
    )


def run(request: Request, settings: Settings, stop: threading.Event | None = None) -> SandboxResult:
    """Run one command to its end, its timeout or its limits (blocking: call it from a
    worker thread in async code); `stop`, set from another thread, ends it as a timeout
    (bwrap and none; Docker runs on to its timeout)."""
    request = validate(request)
    layout = protect.layout(settings, request.workspace)
    backend = choose(settings)
    size = settings.sandbox_output_bytes
    if backend == "docker":
        # Its image brings its own toolchain: a host's .venv would not run on its libraries.
        request = dataclasses.replace(request, toolchain=Toolchain())
        outcome = _docker().run(request, settings.sandbox_image, size, layout)
    elif backend == "bwrap":
        outcome = bwrap.run(request, size, layout, stop, owner=owner(settings.state_root))
    else:
        outcome = none.run(request, size, stop, owner=owner(settings.state_root))
    return result(backend, outcome, memory_mb=request.memory_mb, pids_limit=request.pids_limit)


def doctor(settings: Settings) -> list[BackendCheck]:
    """Each backend: whether it can run here, and why not when it cannot."""
    return [
        _docker().check(settings.sandbox_image),
        bwrap.check(),
        none.check(settings.sandbox_allow_unisolated),
    ]
