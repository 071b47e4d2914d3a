"""What the autopilot tests share: a git repository, a state folder and a providers file
whose two providers (alpha, beta) run fake Claude Code workers, and ways to run the
autopilot and read what it did."""

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import ROOT, agents, open_db

if TYPE_CHECKING:
    from tests.forge.server import Acting, Forge

FAKE = ROOT / "wvo_mcp" / "autopilot" / "fake.py"
RUN_TIMEOUT_S = 240


def git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args]
    return subprocess.run(command, cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    return make_project(tmp_path)


def make_project(tmp_path: Path) -> dict[str, Path]:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("a project\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "start")
    wrapper = tmp_path / "bin" / "fake-claude"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -P "{FAKE}" "$@"\n')
    wrapper.chmod(0o755)
    providers = tmp_path / "providers.yaml"
    providers.write_text(
        "version: 1\nproviders:\n"
        + "".join(
            f"""  - name: {name}
    preference: {preference}
    max_concurrent: 2        # as many as its slots: routing sends the rest elsewhere
    tiers:
      - name: all
        model: {name}-model
        complexity: [1, 10]
        input_cost_per_1k: 0.001
        output_cost_per_1k: 0.002
    worker:
      kind: claude
      executable: {wrapper}
      max_workers: 2
      hang_seconds: 15  # a fake starting beside three others on 2 busy cores is silent a while
"""
            for preference, name in enumerate(("alpha", "beta"), start=1)
        )
    )
    return {"repo": repo, "state": tmp_path / "state", "providers": providers}


def env(project: dict[str, Path]) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(project["state"].parent),
        "WVO_STATE_ROOT": str(project["state"]),
        "WVO_WORKSPACE_ROOT": str(project["repo"]),
        "WVO_PROVIDERS_FILE": str(project["providers"]),
        "WVO_WIP_LIMIT": "4",
        "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": "0",
        "WVO_OTEL_ENABLED": "0",
        "WVO_RETRY_BASE_SECONDS": "0.2",
    }


def autopilot(
    project: dict[str, Path], *args: str, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-P", "-m", "wvo_mcp", "autopilot", "--until-empty", *args],
            cwd=ROOT,
            env=env(project) | extra_env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the autopilot did not finish: {exc.stdout!r} {exc.stderr!r}")


async def backlog(project: dict[str, Path], tasks: list[dict[str, object]], **extra: str) -> None:
    # A server in this process reads only its settings; PATH and HOME are the workers'.
    settings = {k: v for k, v in (env(project) | extra).items() if k.startswith("WVO_")}
    async with agents(project["state"], "planner", **settings) as team:
        await team["planner"].call("task_create", tasks=tasks)


def events(project: dict[str, Path], kind: str) -> list[tuple[str, str, str]]:
    with open_db(project["state"]) as db:
        rows = db.execute(
            "SELECT task_id, actor, coalesce(reason, '') FROM task_events WHERE kind = ? "
            "ORDER BY id",
            (kind,),
        ).fetchall()
    return [tuple(row) for row in rows]


def one_provider(
    name: str, tier: str, model: str, worker: dict[str, object], costs: tuple[float, float]
) -> str:
    """A providers file of one provider with one tier for every complexity, its worker
    `worker` (kind and executable first), one slot, two minutes before it counts as hung."""
    lines = "".join(f"      {key}: {value}\n" for key, value in worker.items())
    return f"""version: 1
providers:
  - name: {name}
    preference: 1
    tiers:
      - name: {tier}
        model: {model}
        complexity: [1, 10]
        input_cost_per_1k: {costs[0]}
        output_cost_per_1k: {costs[1]}
    worker:
{lines}      max_workers: 1
      hang_seconds: 120
"""


def claude_providers(executable: Path) -> str:
    """A providers file whose one provider's worker is the real Claude Code at `executable`."""
    worker = {"kind": "claude", "executable": executable}
    return one_provider("claude", "sonnet", "claude-sonnet-4-5", worker, (0.003, 0.015))


def codex_providers(executable: Path, model: str) -> str:
    """A providers file whose one provider's worker is the real Codex at `executable`,
    asking for `model` (its API and key come from the autopilot's environment)."""
    worker = {"kind": "codex", "executable": executable}
    return one_provider("codex", "stub", model, worker, (0.001, 0.002))


@dataclass(frozen=True)
class Words:
    """How a test forge names what the scenario suite asserts on, and how a person's hand
    differs there (tests/forge/server.py and tests/forge/gitlab/server.py)."""

    kind: str  # github, gitlab
    noun: str  # pull request, merge request
    sign: str  # what precedes a pull request's number: # or !
    token: str  # the token the forge accepts
    spec: str  # `import`'s name of the project
    task: str  # an issue's task id, before its number
    pulls: str  # a pull request's web page, before its number
    runs: str  # a failed check's link, before its id
    check: str  # the required check's name, as the forge names it
    queue: str  # the forge's own queue: merge queue, merge train
    queued_by: str  # who the test forge says merged what its queue merged
    reviews: str  # the API path whose reads are the reviews', before its number
    review_anchor: str  # what a review's link adds to the pull request's page
    refused: str  # what the client says of a revoked token
    primary: str  # of a rate limit whose end the forge names
    secondary: str  # of one it names a wait for
    failed: str  # of a 502
    enqueues: str  # the API path a POST to which joins the forge's queue

    def pull(self, number: int) -> str:
        return f"{self.noun} {self.sign}{number}"

    def approve(self, forge: "Forge", number: int, head: str = "") -> None:
        """A writer approves; on GitLab, resolving the threads they opened before (GitLab
        merges only once every thread is resolved)."""
        if self.kind == "gitlab":
            forge.resolve(number)  # type: ignore[attr-defined]
        forge.review(number, "APPROVED")

    def acting(self, body: str, full: str) -> "Acting":
        """What a pull request's text would close and mention on this forge, on its merge."""
        from tests.forge import server
        from tests.forge.gitlab import server as gitlab

        return (gitlab.acting if self.kind == "gitlab" else server.acting)(body, full)

    def use_queue(self, forge: "Forge") -> None:
        """The branch merges only through the forge's queue: GitHub's merge queue (a branch
        rule), GitLab's merge train (a project setting)."""
        setattr(forge, "merge_trains" if self.kind == "gitlab" else "merge_queue", True)


GITHUB = Words(
    "github", "pull request", "#", "ghp_forge-test-token-0123456789", "github:team/project",
    "gh/team/project/", "/team/project/pull/", "/team/project/runs/", "check", "merge queue",
    "merge-queue", "/repos/team/project/pulls/{}/reviews", "#review-", "refused the token",
    "primary rate limit", "secondary rate limit", "GitHub failed (502)", "/api/graphql",
)  # fmt: skip
GITLAB = Words(
    "gitlab", "merge request", "!", "glpat-forge-test-token-0123456789",
    "gitlab:group/sub/project", "gl/group/sub/project/", "/group/sub/project/-/merge_requests/",
    "/group/sub/project/-/pipelines/", "pipeline", "merge train", "merge-train",
    "/projects/group%2Fsub%2Fproject/merge_requests/{}/approvals", "", "give a valid token",
    "rate limit is reached", "rate limit is reached", "GitLab failed (502)",
    "/merge_trains/merge_requests/",
)  # fmt: skip
CANNOT: dict[tuple[str, str], str] = {}  # (scenario, forge) -> why that forge cannot pass it


def cannot(scenario: str, kind: str, reason: str) -> None:
    """Mark `scenario` (a test's name) as one the `kind` forge cannot pass, and say why: it
    runs there as a strict xfail (tests/autopilot/conftest.py's forge fixture), and
    docs/forge.md lists it."""
    CANNOT[(scenario, kind)] = reason


def cannot_listed() -> str:
    """What docs/forge.md lists between its `cannot` markers: each scenario a forge cannot
    pass, with why (the scenario modules imported first, as their `cannot` calls fill it)."""
    names = {"github": "GitHub", "gitlab": "GitLab"}
    lines = [f"- `{scenario}` on {names[kind]}: {why}"
             for (scenario, kind), why in sorted(CANNOT.items())]  # fmt: skip
    return "\n".join(lines) or "(none: every scenario passes on both forges)"


@pytest.fixture(params=["github", "gitlab"])
def forge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator["Forge"]:
    """The test forge (tests/forge/server.py: GitHub; tests/forge/gitlab/server.py: GitLab)
    serving a project with its own check, every request and answer held to its forge's
    description; on GitLab, nothing the queue writes would run a quick action."""
    from tests.autopilot.test_remote_landing import project_with_check
    from tests.forge.gitlab import server as gitlab
    from tests.forge.server import Forge

    class Rooted(gitlab.Forge):
        """The test GitLab under the relative URL root /git, as a self-managed instance may
        be: its git (tests/gitservers.py's SmartHttp) is served there, and a project's path
        is the remote's without that root (forge/select.py)."""

        def __init__(self, tmp: Path, seed: Path) -> None:
            super().__init__(tmp, seed)
            self.api = f"{self.web}/git{gitlab.PREFIX}"

        def answer(
            self, method: str, path: str, query: dict[str, list[str]],
            headers: dict[str, str], body: bytes,
        ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
            return super().answer(method, path.removeprefix("/git"), query, headers, body)

    kind = request.param
    seed = project_with_check(tmp_path / "seed")
    made = Rooted if kind == "gitlab" else Forge
    with made(tmp_path, seed["repo"]) as found:
        yield found
        assert found.violations == [], found.violations[:5]
        assert getattr(found, "acted", []) == [], found.acted  # type: ignore[attr-defined]


@pytest.fixture
def words(forge: "Forge") -> Words:
    return words_of(forge)


def words_of(forge: "Forge") -> Words:
    return GITLAB if hasattr(forge, "acted") else GITHUB


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A scenario its forge cannot pass (`cannot`) runs there as a strict xfail."""
    for item in items:
        kind = getattr(getattr(item, "callspec", None), "params", {}).get("forge")
        why = CANNOT.get((getattr(item, "originalname", item.name), kind or ""))
        if why is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=why))
