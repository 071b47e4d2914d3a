"""No forge credential reaches a worker or a sandboxed command, on either forge.

The autopilot's own environment may hold every variable a forge token is read from: GitHub's
(`gh`'s), GitLab's (`glab`'s: GITLAB_TOKEN, GITLAB_ACCESS_TOKEN, OAUTH_TOKEN, and the host they
are for) and both webhooks' secrets. A worker's environment (autopilot/worker_config.environment,
for every kind and every ACP agent) and a sandboxed command's (sandbox/environment.command_env) are
built from allowlists, so none of them, name or value, is in either. The end-to-end twin, a
hostile worker hunting the token on each test forge, is
tests/autopilot/test_pull_requests.py::test_a_hostile_worker_finds_no_forge_token_and_reaches_no_forge.
"""

from pathlib import Path

import pytest

from wvo_mcp.autopilot.worker_config import Launch, environment
from wvo_mcp.forge import credentials
from wvo_mcp.providers import WorkerKind
from wvo_mcp.rules import acp_agents
from wvo_mcp.sandbox.environment import BASE_ENV

FORGE = {
    credentials.OWN: "wvo-forge-secret",
    **{name: f"gh-secret-{name}" for name in (*credentials.PUBLIC, *credentials.ENTERPRISE)},
    **{name: f"gl-secret-{name}" for name in credentials.GITLAB},
    **{name: "gitlab.example.com" for name in credentials.GITLAB_HOSTS},
    "WVO_WEBHOOK_SECRET": "hook-secret-github",
    "WVO_GITLAB_WEBHOOK_SECRET": "hook-secret-gitlab",
    "WVO_GITLAB_WEBHOOK_SIGNING_TOKEN": "whsec_hook-signing-gitlab",
}
OUTSIDE = {"PATH": "/usr/bin", "HOME": "/root", "ANTHROPIC_API_KEY": "sk-ant", **FORGE}
LAUNCH = Launch(
    agent_id="w1", task_id="T1", model="m", workdir=Path("/work/p"), home=Path("/home/w"),
    mcp_url="http://127.0.0.1:40123/mcp",
)  # fmt: skip
KINDS = [
    WorkerKind(kind="claude"),
    WorkerKind(kind="codex"),
    WorkerKind(kind="command", template=("a",)),
    *(WorkerKind(kind="acp", agent=name) for name in sorted(acp_agents.AGENTS)),
]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.agent or k.kind)
def test_no_worker_gets_a_forge_token_a_webhook_secret_or_glab_s_host(kind: WorkerKind) -> None:
    env = environment(kind, LAUNCH, "run-token", OUTSIDE)
    assert not set(FORGE) & set(env), sorted(set(FORGE) & set(env))
    secrets = [v for v in FORGE.values() if "secret" in v]
    assert not [v for v in env.values() if any(s in v for s in secrets)], env


def test_a_sandboxed_command_starts_from_a_base_with_no_forge_variable() -> None:
    assert not set(FORGE) & set(BASE_ENV)
