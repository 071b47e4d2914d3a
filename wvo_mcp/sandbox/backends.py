"""Which sandbox backend runs a command: WVO_SANDBOX_BACKEND, and `auto`'s choice.

`auto` (the default) takes Docker when an engine answers and the image is present, else
bubblewrap with cgroups, else refuses, unless WVO_SANDBOX_ALLOW_UNISOLATED=1 lets it run
without isolation. Used by `sandbox/__init__.py:run`, and each backend judged for `wvo-mcp
sandbox doctor` (`doctor`).
"""

from types import ModuleType

from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.sandbox import bwrap, none
from wvo_mcp.sandbox.outcome import Backend, BackendCheck

NOT_ISOLATED_HINT = (
    "install bubblewrap (`apt-get install bubblewrap`), or start Docker with the image present, "
    "or set WVO_SANDBOX_ALLOW_UNISOLATED=1 to run without isolation"
)


def docker() -> ModuleType:
    # Imported on first use: the docker package (and requests) would add ~40 ms and ~10 MB
    # to every server's start, and most never run a command.
    from wvo_mcp.sandbox import docker_backend

    return docker_backend


def choose_backend(settings: Settings) -> Backend:
    """The backend for the next run, per WVO_SANDBOX_BACKEND; refuses when none may run."""
    wanted = settings.sandbox_backend
    if wanted == "docker":
        reason = docker().unavailable(settings.sandbox_image)
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
    docker_reason = docker().unavailable(settings.sandbox_image)
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


def doctor(settings: Settings) -> list[BackendCheck]:
    """Each backend: whether it can run here, and why not when it cannot."""
    return [
        docker().check(settings.sandbox_image),
        bwrap.check(),
        none.check(settings.sandbox_allow_unisolated),
    ]
