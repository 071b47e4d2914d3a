"""The answer of one command run in the sandbox, whatever the backend ran it.

Shared by sandbox_run, verify_command and the landing checks, so each reports a run alike.
"""

from typing import Literal

from pydantic import BaseModel, Field


class SandboxResult(BaseModel):
    """One command run in the sandbox; the same shape whatever the backend."""

    backend: Literal["docker", "bwrap", "none"] = Field(description="Where it ran")
    exit_code: int | None = Field(description="None when the sandbox killed it")
    timed_out: bool
    killed_reason: str | None = Field(
        description='Why the sandbox stopped it or refused it resources: "timeout", '
        '"memory limit (512 MB)", "pids limit (256)"'
    )
    stdout_tail: str
    stderr_tail: str
    truncated: bool = Field(description="Either stream was cut; the tail is kept")
    duration_s: float
    peak_memory_mb: float | None = Field(description="None when the backend cannot tell")
