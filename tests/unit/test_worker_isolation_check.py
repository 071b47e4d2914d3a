"""Where no sandbox can isolate a worker, the autopilot refuses to start and says how to
fix it; --unsandboxed-workers is the person's explicit way past that."""

from pathlib import Path

import pytest

from wvo_mcp import providers
from wvo_mcp.autopilot import loop, slots
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.sandbox import bwrap, workers


def test_without_bwrap_the_check_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bwrap, "find", lambda: None)
    monkeypatch.setattr(bwrap, "_usable", None)
    why = workers.check()
    assert why is not None
    assert "bubblewrap" in why and "--unsandboxed-workers" in why


def test_the_autopilot_refuses_to_start_unisolated(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(workers, "check", lambda: "bwrap is not installed; install bubblewrap")

    class Providers:
        def __init__(self) -> None:
            self.workers = {"p": providers.WorkerKind(kind="claude")}
            self.source = "test"

    class Orchestrator:
        providers = Providers()

    settings = Settings(state_root=tmp_path / "state", workspace_root=tmp_path)
    with pytest.raises(ValidationFailed, match="runs every worker in a sandbox"):
        loop.Autopilot(
            Orchestrator(),  # type: ignore[arg-type]
            settings,
            slots.Options(),
            say=print,
        )
