"""Settings, read once from the environment (and CLI flags that override it)."""

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from wvo_mcp.errors import ValidationFailed


def _int(env: Mapping[str, str], name: str, default: int | None, minimum: int = 1) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ValidationFailed(f"{name}={value} must be at least {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationFailed(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValidationFailed(f"{name}={raw!r} must be a finite number and must not be negative")
    return value


@dataclass(frozen=True)
class Settings:
    state_root: Path = Path("state")
    workspace_root: Path = Path(".")
    wip_global: int = 3
    wip_per_agent: int = 1
    wip_per_epic: int | None = None
    agent_id: str | None = None
    default_lease_seconds: int = 600
    retry_base_seconds: float = 30.0
    retry_cap_seconds: float = 3600.0
    context_section_bytes: int = 16_384
    context_total_bytes: int = 65_536

    @property
    def db_path(self) -> Path:
        return self.state_root / "orchestrator.db"

    @property
    def context_file(self) -> Path:
        return self.state_root / "context.md"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, state_root: str | Path | None = None
    ) -> "Settings":
        env = os.environ if env is None else env
        root = state_root or env.get("WVO_STATE_ROOT") or "state"
        return cls(
            state_root=Path(root),
            workspace_root=Path(env.get("WVO_WORKSPACE_ROOT") or "."),
            wip_global=_int(env, "WVO_AUTOPILOT_WIP_LIMIT", 3) or 3,
            wip_per_agent=_int(env, "WVO_WIP_PER_AGENT", 1) or 1,
            wip_per_epic=_int(env, "WVO_WIP_PER_EPIC", None),
            agent_id=env.get("WVO_AGENT_ID") or None,
            default_lease_seconds=_int(env, "WVO_LEASE_SECONDS", 600) or 600,
            retry_base_seconds=_float(env, "WVO_RETRY_BASE_SECONDS", 30.0),
            retry_cap_seconds=_float(env, "WVO_RETRY_CAP_SECONDS", 3600.0),
            context_section_bytes=_int(env, "WVO_CONTEXT_SECTION_BYTES", 16_384) or 16_384,
            context_total_bytes=_int(env, "WVO_CONTEXT_TOTAL_BYTES", 65_536) or 65_536,
        )
