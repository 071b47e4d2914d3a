"""No real model API's address in a worker's environment where its run's meter stands: the
native Codex worker (`codex exec`, from npm), its API the scripted one named by
OPENAI_BASE_URL, prints its shell's environment to its model, which holds the meter's address
and never the API's (the ACP agents alike: test_acp_agents.py)."""

import json
import shutil
from pathlib import Path

import anyio
import pytest

from tests.autopilot.conftest import autopilot, backlog, codex_providers, git
from tests.autopilot.scripted_api import ScriptedApi
from tests.conftest import ROOT

CODEX = ROOT / "tests" / "claude_code" / "node_modules" / ".bin" / "codex"
pytestmark = [
    pytest.mark.skipif(
        not CODEX.exists() or shutil.which("node") is None,
        reason="the Codex CLI is not installed (scripts/setup installs it with npm)",
    ),
    pytest.mark.slow,
]


def test_a_metered_codex_workers_environment_names_no_real_api(project: dict[str, Path]) -> None:
    project["providers"].write_text(codex_providers(CODEX, "stub-model"))
    anyio.run(backlog, project, [{"id": "CE1", "title": "a task for Codex"}])
    home = project["state"].parent / "home"
    (home / ".codex").mkdir(parents=True)
    api = ScriptedApi()
    try:
        base = f"{api.url}/v1"
        ran = autopilot(project, HOME=str(home), OPENAI_API_KEY="scripted", OPENAI_BASE_URL=base)
    finally:
        api.close()
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "1 launched, 1 done" in ran.stdout, ran.stdout
    assert git(project["repo"], "show", "wvo/CE1:CE1.txt").strip() == "CE1"
    items = [item for request in api.requests["openai"] for item in request["input"]]
    outputs = [str(item.get("output")) for item in items if "output" in item]
    printed = next((o for o in outputs if "CODEX_HOME=" in o), "")
    assert printed, outputs  # its shell's environment, as the model saw it
    assert api.url not in json.dumps(api.requests["openai"]), printed
