"""`wvo-mcp init` and `wvo-mcp doctor`, run as a person runs them, in a scratch repository
that already has its own .mcp.json, .codex/config.toml, AGENTS.md and .gitignore: what the
person wrote is kept, a second run is a no-op, --dry-run writes nothing, and a file init
cannot merge into is refused with nothing written."""

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import CLI_TIMEOUT_SECONDS, fresh_env, open_db
from tests.gitwork import git, git_env
from wvo_mcp import providers
from wvo_mcp.wiring import edits

WVO = Path(sys.executable).with_name("wvo-mcp")
CLIS = Path(__file__).resolve().parents[1] / "claude_code" / "node_modules" / ".bin"

THEIR_MCP = {"mcpServers": {"docs": {"command": "docs-server", "args": ["--port", "1"]}}}
THEIR_TOML = '# my Codex settings\nmodel = "o3"  # the one I like\n\n[mcp_servers.docs]\n'
THEIR_TOML += 'command = "docs-server"\n'
THEIR_AGENTS = "# Rules\n\nUse tabs.\n"
THEIR_IGNORE = "node_modules/\n*.log"  # no newline at the end


def init(
    repo: Path, *args: str, path: str = "/usr/bin:/bin", **env: str
) -> subprocess.CompletedProcess[str]:
    """`wvo-mcp ARGS` in `repo` (init unless ARGS says otherwise), with only `path` for
    PATH: by default no coding CLI is found."""
    command = [str(WVO), *(args if args and args[0] == "doctor" else ("init", *args))]
    return subprocess.run(
        command,
        cwd=repo,
        env=fresh_env(
            {"PATH": path, "HOME": str(repo.parent / "home"), "WVO_OTEL_ENABLED": "0", **env},
            warm=True,  # doctor's servers are forked, as on a user's machine
        ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS * 2,
    )


def alone_on_path(folder: Path, cli: Path) -> str:
    """A PATH with `cli` as the only coding CLI (linked in `folder`), node, and the system."""
    folder.mkdir()
    (folder / cli.name).symlink_to(cli)
    return f"{folder}:{os.path.dirname(shutil.which('node') or '/usr/bin/node')}:/usr/bin:/bin"


def tree(repo: Path) -> dict[str, bytes]:
    """Every file under the repository but git's own, with its bytes."""
    return {
        str(p.relative_to(repo)): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts[:1]
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A person's repository with files of their own that init must merge into."""
    path = tmp_path / "project"
    (tmp_path / "home").mkdir()
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / ".mcp.json").write_text(json.dumps(THEIR_MCP))
    (path / ".codex").mkdir()
    (path / ".codex" / "config.toml").write_text(THEIR_TOML)
    (path / "AGENTS.md").write_text(THEIR_AGENTS)
    (path / ".gitignore").write_text(THEIR_IGNORE)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "theirs")
    return path


def test_init_keeps_what_the_person_wrote_and_adds_the_wiring(repo: Path) -> None:
    done = init(repo)
    assert done.returncode == 0, done.stderr
    state = repo / ".wvo"

    servers = json.loads((repo / ".mcp.json").read_text())["mcpServers"]
    assert servers["docs"] == THEIR_MCP["mcpServers"]["docs"]
    ours = servers["wvo"]
    # wvo-mcp is not on this PATH: its path, this machine's, said to be per machine.
    assert ours["command"] == str(WVO) and ours["args"] == ["serve"]
    assert ours["env"] == {"WVO_TOOLS": "worker"}  # the state is found from the repository
    assert "per machine, not to commit: .mcp.json and .codex/config.toml start" in done.stdout

    toml_text = (repo / ".codex" / "config.toml").read_text()
    assert toml_text.startswith(THEIR_TOML)  # comments and all, byte for byte
    codex = tomllib.loads(toml_text)["mcp_servers"]
    assert codex["docs"] == {"command": "docs-server"}
    assert codex["wvo"] == {**ours, "required": True}

    agents = (repo / "AGENTS.md").read_text()
    assert agents.startswith(THEIR_AGENTS + "\n<!-- wvo-mcp:begin")
    assert agents.count("<!-- wvo-mcp:begin") == 1 and "claim_task" in agents
    assert (repo / "CLAUDE.md").read_text() == agents[len(THEIR_AGENTS) + 1 :]

    ignore = (repo / ".gitignore").read_text()
    assert ignore.startswith(THEIR_IGNORE + "\n") and "/.wvo/\n" in ignore
    assert git(repo, "check-ignore", ".wvo/orchestrator.db") == ".wvo/orchestrator.db"
    # Nothing of the state folder shows up for git to commit.
    assert all(".wvo" not in line for line in git(repo, "status", "--porcelain").splitlines())

    # No CLI on PATH: no providers file (the packaged default applies), said so.
    assert not (state / "providers.yaml").exists()
    assert "no coding CLI" in done.stdout
    with open_db(state) as db:
        ids = [r[0] for r in db.execute("SELECT id FROM tasks ORDER BY id")]
    assert ids == ["wvo-start-build", "wvo-start-map"]
    assert git(repo, "config", "--get", "wvo.stateRoot") == str(state)


ON_PATH = f"{WVO.parent}:/usr/bin:/bin"  # wvo-mcp on PATH, as a teammate's or CI's has it


def test_init_ends_with_the_files_to_commit_and_why(repo: Path) -> None:
    lines = init(repo, path=ON_PATH).stdout.splitlines()
    why = lines.index(
        "commit these: the autopilot's workers see only committed CLAUDE.md and AGENTS.md, "
        "and your teammates' clients read .mcp.json, .codex/config.toml and .gitignore:"
    )
    told = lines[why + 1].strip()
    assert told == (
        "git add .gitignore .mcp.json .codex/config.toml AGENTS.md CLAUDE.md "
        "&& git commit -m 'Wire wvo-mcp'"
    )
    assert lines[why + 2].startswith("per machine: the state folder ")
    assert lines[why + 4].startswith("next: ")
    # What it says to run commits everything init wrote for everyone, and no state.
    subprocess.run(["/bin/sh", "-c", told], cwd=repo, env=git_env(repo), check=True)
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert ".wvo" not in git(repo, "ls-files")
    # ...and no path of this machine's: a teammate's client runs `wvo-mcp serve` alike.
    for name in (".mcp.json", ".codex/config.toml"):
        text = (repo / name).read_text()
        assert str(repo.parent) not in text and str(WVO) not in text, text
        assert '"wvo-mcp"' in text
    again = init(repo, path=ON_PATH)
    assert again.returncode == 0 and "commit these" not in again.stdout


def test_init_shows_how_to_land_through_the_forge_that_hosts_origin(repo: Path) -> None:
    from wvo_mcp.wiring.init import landing

    assert landing(repo) is None  # no origin: nothing to say
    git(repo, "remote", "add", "origin", "https://gitlab.example.com/team/platform/app.git")
    lines = init(repo, path=ON_PATH).stdout.splitlines()
    assert lines[-1] == (
        "to land through GitLab's merge requests (a protected branch), as a project or group "
        "access token (a bot user of its own) in WVO_FORGE_TOKEN: `wvo-mcp doctor --onto "
        "origin/main --via merge-request` checks it, then `wvo-mcp autopilot --merge merge "
        "--onto origin/main --via merge-request` (docs/forge.md)"
    ), lines[-3:]
    assert lines[-2].startswith("next: ")
    git(repo, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/trunk")
    said = landing(repo)
    assert said is not None and "--onto origin/trunk --via merge-request" in said
    git(repo, "remote", "set-url", "origin", "git@github.com:team/app.git")
    said = landing(repo)
    assert said is not None and "GitHub's pull requests" in said and "GitHub App" in said
    assert "--onto origin/trunk --via pull-request" in said
    # A host that names no forge could be either: nothing is guessed.
    git(repo, "remote", "set-url", "origin", "https://git.example.com/team/app.git")
    assert landing(repo) is None


def test_a_teammates_clone_serves_its_own_state_from_the_committed_wiring(
    repo: Path, tmp_path: Path
) -> None:
    assert init(repo, path=ON_PATH).returncode == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "Wire wvo-mcp")
    mate = tmp_path / "mate" / "project"
    mate.parent.mkdir()
    git(mate.parent, "clone", "-q", str(repo), str(mate))
    (mate / "sub").mkdir()
    # Before their own init, the committed entry says what to do, and makes nothing.
    entry = json.loads((mate / ".mcp.json").read_text())["mcpServers"]["wvo"]
    refused = subprocess.run(
        [entry["command"], *entry["args"]], cwd=mate / "sub", capture_output=True, text=True,
        env=fresh_env({"PATH": ON_PATH, "HOME": str(tmp_path / "home"), **entry["env"]}),
        stdin=subprocess.DEVNULL, timeout=CLI_TIMEOUT_SECONDS,
    )  # fmt: skip
    assert refused.returncode == 2 and "run `wvo-mcp init` here first" in refused.stderr
    assert not (mate / "sub" / "state").exists() and not (mate / "state").exists()
    done = init(mate, path=ON_PATH)
    assert done.returncode == 0, done.stderr
    assert git(mate, "status", "--porcelain") == ""  # the committed files stay as they are
    checked = {c["name"]: c for c in json.loads(init(mate, "doctor", "--json", path=ON_PATH)
                                                .stdout)}  # fmt: skip
    for name in ("server from .mcp.json", "server from .codex/config.toml"):
        assert checked[name]["ok"], checked[name]
    assert git(mate, "config", "--get", "wvo.stateRoot") == str(mate / ".wvo")


def test_an_entry_an_earlier_init_wrote_loses_its_machine_paths(repo: Path) -> None:
    old = {"command": str(WVO), "args": ["serve"], "env": {
        "WVO_STATE_ROOT": str(repo / ".wvo"), "WVO_WORKSPACE_ROOT": str(repo),
        "WVO_TOOLS": "worker"}}  # fmt: skip
    (repo / ".mcp.json").write_text(json.dumps({"mcpServers": {"wvo": old}}))
    done = init(repo, path=ON_PATH)
    assert done.returncode == 0, done.stderr
    ours = json.loads((repo / ".mcp.json").read_text())["mcpServers"]["wvo"]
    assert ours == {"command": "wvo-mcp", "args": ["serve"], "env": {"WVO_TOOLS": "worker"}}
    assert ".mcp.json: replaced its wvo server" in done.stdout


def test_a_second_run_changes_nothing(repo: Path) -> None:
    assert init(repo).returncode == 0
    before = tree(repo)
    with open_db(repo / ".wvo") as db:
        events = db.execute("SELECT count(*) FROM task_events").fetchone()[0]
    again = init(repo)
    assert again.returncode == 0, again.stderr
    assert tree(repo) == before
    with open_db(repo / ".wvo") as db:
        assert db.execute("SELECT count(*) FROM task_events").fetchone()[0] == events
    assert "imported" not in again.stdout and "already has the wvo server" in again.stdout


def test_dry_run_writes_nothing_and_shows_what_it_would(repo: Path) -> None:
    before = tree(repo)
    shown = init(repo, "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert tree(repo) == before
    assert not (repo / ".wvo").exists()
    assert git(repo, "config", "--list").count("wvo.") == 0
    # What it would write: the added lines of each merge, and whole new files.
    assert '+    "wvo": {' in shown.stdout and "+[mcp_servers.wvo]" in shown.stdout
    assert "CLAUDE.md: created" in shown.stdout and "dry run: nothing written" in shown.stdout


def test_an_entry_the_person_changed_is_kept_unless_forced(repo: Path) -> None:
    assert init(repo).returncode == 0
    mine = json.loads((repo / ".mcp.json").read_text())
    mine["mcpServers"]["wvo"]["env"]["WVO_AGENT_ID"] = "me"
    (repo / ".mcp.json").write_text(json.dumps(mine))
    agents = (repo / "AGENTS.md").read_text().replace("Keep the `lease_token`", "KEEP IT")
    (repo / "AGENTS.md").write_text(agents)
    before = tree(repo)

    kept = init(repo)
    assert kept.returncode == 0 and tree(repo) == before
    assert "of its own: kept (--force replaces it)" in kept.stdout

    forced = init(repo, "--force")
    assert forced.returncode == 0, forced.stderr
    servers = json.loads((repo / ".mcp.json").read_text())["mcpServers"]
    assert "WVO_AGENT_ID" not in servers["wvo"]["env"] and "docs" in servers
    replaced = (repo / "AGENTS.md").read_text()
    assert replaced.startswith(THEIR_AGENTS) and "KEEP IT" not in replaced
    assert replaced.count("<!-- wvo-mcp:begin") == 1


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        (".mcp.json", "{not json", ".mcp.json is not valid JSON"),
        (".mcp.json", '{"mcpServers": []}', ".mcp.json is not an MCP configuration"),
        (".codex/config.toml", "[mcp_servers\n", ".codex/config.toml is not valid TOML"),
        (".codex/config.toml", "mcp_servers = 3\n", "other than a table"),
        ("AGENTS.md", f"x\n{edits.END}\n{edits.BEGIN}\nmine\n", "without"),
    ],
)
def test_a_file_init_cannot_merge_into_is_refused_and_nothing_is_written(
    repo: Path, name: str, text: str, said: str
) -> None:
    (repo / name).write_text(text)
    before = tree(repo)
    refused = init(repo)
    assert refused.returncode == 2
    assert said in refused.stderr and "run init again" in refused.stderr
    assert tree(repo) == before and not (repo / ".wvo").exists()


def test_a_link_out_of_the_repository_is_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.md"
    outside.write_text("theirs\n")
    (repo / "CLAUDE.md").symlink_to(outside)
    refused = init(repo)
    assert refused.returncode == 2 and "outside the repository" in refused.stderr
    assert outside.read_text() == "theirs\n" and not (repo / ".wvo").exists()


def test_claude_md_linked_to_agents_md_gets_one_section(repo: Path) -> None:
    (repo / "CLAUDE.md").symlink_to("AGENTS.md")
    assert init(repo).returncode == 0
    assert (repo / "CLAUDE.md").is_symlink()
    assert (repo / "AGENTS.md").read_text().count("<!-- wvo-mcp:begin") == 1


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`wvo-mcp ARGS` in `cwd` with no state folder named (none in the environment)."""
    return subprocess.run(
        [str(WVO), *args],
        cwd=cwd,
        env=fresh_env(
            {"PATH": "/usr/bin:/bin", "HOME": str(cwd.parent / "home"), "WVO_OTEL_ENABLED": "0"}
            | env
        ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
    )


@pytest.mark.parametrize(
    "args",
    [("status",), ("import", "roadmap.yaml"), ("export",), ("tokens", "list"), ("show", "T1"),
     ("autopilot", "status"), ("backup",), ("dashboard", "--no-auth")],
    ids=lambda args: args[0],
)  # fmt: skip
def test_a_command_outside_an_initialised_repository_says_to_run_init(
    repo: Path, args: tuple[str, ...]
) -> None:
    """Not silently a new ./state wherever the command stands: a person who has not run init
    here (or is in the wrong folder) is told so, with the other way to name a state folder."""
    (repo / "roadmap.yaml").write_text("version: 1\ntasks: [{id: T1, title: one}]\n")
    before = tree(repo)
    refused = run(repo, *args)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.splitlines() == [
        "wvo-mcp: no state folder here: run `wvo-mcp init` here first (it makes one and "
        "records it for this repository), or name one with --state-root DIR or WVO_STATE_ROOT"
    ]
    assert refused.stdout == ""
    assert tree(repo) == before and not (repo / "state").exists()


def test_a_named_state_folder_or_an_existing_state_database_is_used(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "roadmap.yaml").write_text("version: 1\ntasks: [{id: T1, title: one}]\n")
    named = tmp_path / "named"
    done = run(repo, "--state-root", str(named), "import", "roadmap.yaml")
    assert done.returncode == 0 and f"into {named / 'orchestrator.db'}" in done.stdout
    done = run(repo, "status", WVO_STATE_ROOT=str(named))
    assert done.returncode == 0 and "pending 1" in done.stdout
    # ./state holding a database (a clone of wvo-mcp after its first import) is found.
    assert run(repo, "--state-root", "state", "import", "roadmap.yaml").returncode == 0
    done = run(repo, "status")
    assert done.returncode == 0, done.stderr
    assert f"state: {repo / 'state' / 'orchestrator.db'}" in done.stdout


def test_doctor_in_a_repository_without_init_makes_no_state_folder(repo: Path) -> None:
    before = tree(repo)
    checked = run(repo, "doctor", "--json")
    assert checked.returncode == 1
    found = {c["name"]: (c["ok"], c["detail"]) for c in json.loads(checked.stdout)}
    assert found["state folder"] == (False, f"none recorded for {repo}: run `wvo-mcp init`")
    assert found["database"] == (False, f"none in {repo / 'state'}: `wvo-mcp init` makes it")
    assert tree(repo) == before and not (repo / "state").exists()


def test_init_outside_a_repository_is_refused(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    loose = tmp_path / "loose"
    loose.mkdir()
    refused = init(loose)
    assert refused.returncode == 2 and "git init" in refused.stderr
    assert list(loose.iterdir()) == []


@pytest.mark.skipif(
    not (CLIS / "claude").exists() or shutil.which("node") is None,
    reason="the Claude Code and Codex CLIs are not installed (scripts/setup)",
)
def test_the_cli_on_path_get_a_providers_file_and_doctor_checks_the_wiring(
    repo: Path,
) -> None:
    path = f"{CLIS}:{os.path.dirname(shutil.which('node') or '/usr/bin/node')}:/usr/bin:/bin"
    done = init(repo, path=path)
    assert done.returncode == 0, done.stderr
    providers = (repo / ".wvo" / "providers.yaml").read_text()
    assert f"executable: {CLIS / 'claude'}" in providers
    assert f"executable: {CLIS / 'codex'}" in providers
    shown = subprocess.run(
        [str(WVO), "providers"], cwd=repo / ".codex", capture_output=True, text=True,
        env=fresh_env({"PATH": path, "HOME": str(repo.parent / "home")}, warm=True),
        timeout=CLI_TIMEOUT_SECONDS,
    )  # fmt: skip
    assert shown.returncode == 0 and "claude" in shown.stdout  # found from a subfolder

    checked = init(repo, "doctor", "--json", path=path)
    found = {c["name"]: c for c in json.loads(checked.stdout)}
    for name in ("state folder", "ignored by git", "database", "sandbox"):
        assert found[name]["ok"], found[name]
    for name in ("server from .mcp.json", "server from .codex/config.toml"):
        assert found[name] == {"name": name, "ok": True, "detail": "starts and offers 9 tools"}
    # No credentials in this scratch home: said, with how to sign in; doctor fails.
    assert not found["claude"]["ok"] and "ANTHROPIC_API_KEY" in found["claude"]["detail"]
    assert not found["codex"]["ok"] and "codex login" in found["codex"]["detail"]
    # Whether each, as a worker, is charged by its model API's answers: Codex without an
    # API key is not, and says why.
    assert "as a worker, metered by its model API's answers" in found["claude"]["detail"]
    assert "as a worker, NOT METERED: Codex signed in with ChatGPT" in found["codex"]["detail"]
    assert checked.returncode == 1

    # A person who removes the server from a client's file is told how to bring it back.
    (repo / ".mcp.json").write_text(json.dumps(THEIR_MCP))
    again = {c["name"]: c for c in json.loads(init(repo, "doctor", "--json", path=path).stdout)}
    assert again["server from .mcp.json"]["detail"] == (
        '.mcp.json has no "wvo" server: run `wvo-mcp init`'
    )


def test_an_old_cli_is_left_out_with_what_to_do(repo: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    old = bin_dir / "claude"
    old.write_text("#!/bin/sh\necho '1.0.3 (Claude Code)'\n")
    old.chmod(0o755)
    done = init(repo, path=f"{bin_dir}:/usr/bin:/bin")
    assert done.returncode == 0, done.stderr
    assert "skipped: claude 1.0.3 is older than 2.1" in done.stdout
    assert "npm install -g @anthropic-ai/claude-code" in done.stdout
    assert not (repo / ".wvo" / "providers.yaml").exists()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="the planner runs in bubblewrap")
def test_a_goal_is_planned_into_tasks_instead_of_the_starter_roadmap(
    repo: Path, tmp_path: Path
) -> None:
    """--goal: a planner worker (the fake Claude Code, wvo_mcp/autopilot/fake.py, standing
    for the claude init finds on PATH) writes the backlog, in its sandbox."""
    from wvo_mcp.autopilot import fake

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    claude = bin_dir / "claude"
    claude.write_text(f'#!/bin/sh\nexec "{sys.executable}" -P "{fake.__file__}" "$@"\n')
    claude.chmod(0o755)
    done = init(repo, "--goal", "a config file parser", path=f"{bin_dir}:/usr/bin:/bin")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "planned (success)" in done.stdout
    assert not (repo / ".wvo" / "roadmap.yaml").exists()
    with open_db(repo / ".wvo") as db:
        titles = [r[0] for r in db.execute("SELECT title FROM tasks")]
        workers = {r[0] for r in db.execute("SELECT actor FROM task_events WHERE kind='claimed'")}
    assert len(titles) == 3 and all("config file parser" in t for t in titles), titles
    assert workers == set()  # planned only: nothing was worked


def test_a_goal_without_a_coding_cli_is_refused(repo: Path) -> None:
    before = tree(repo)
    refused = init(repo, "--goal", "anything")
    assert refused.returncode == 2 and "--goal needs a coding CLI" in refused.stderr
    assert tree(repo) == before


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="the pre-flight runs in bubblewrap")
def test_init_and_doctor_name_the_toolchain_and_doctor_runs_the_pre_flight(repo: Path) -> None:
    # The person's node_modules, ignored by their .gitignore: found with no configuration.
    (repo / "node_modules" / ".bin").mkdir(parents=True)
    runner = repo / "node_modules" / ".bin" / "runner"
    runner.write_text('#!/bin/sh\necho "runner ran in $PWD"\n')
    runner.chmod(0o755)
    done = init(repo)
    assert done.returncode == 0, done.stderr
    assert "checks and workers see, read-only: node_modules (found)" in done.stdout, done.stdout

    checked = init(repo, "doctor", "--json", "--check", "runner")
    found = {c["name"]: c for c in json.loads(checked.stdout)}
    assert found["toolchain"]["ok"] and "node_modules (found)" in found["toolchain"]["detail"]
    assert found["pre-flight"]["ok"], found["pre-flight"]  # on PATH from node_modules/.bin
    assert "passes on HEAD at" in found["pre-flight"]["detail"]

    red = init(repo, "doctor", "--json", "--check", "echo broken; exit 3")
    said = {c["name"]: c for c in json.loads(red.stdout)}["pre-flight"]
    assert not said["ok"] and red.returncode == 1
    assert "exit 3" in said["detail"] and "broken" in said["detail"]
    assert "--skip-preflight" in said["detail"]


def test_doctor_reaches_the_remote_and_writes_to_it_leaving_nothing(
    repo: Path, tmp_path: Path
) -> None:
    from tests.gitservers import Daemon, bare

    served = bare(tmp_path / "served", repo)
    done = init(repo)
    assert done.returncode == 0, done.stderr
    with Daemon(tmp_path / "served") as server:
        git(repo, "remote", "add", "origin", server.url("project.git"))
        checked = init(repo, "doctor", "--json", "--onto", "origin/main")
        remote = {c["name"]: c for c in json.loads(checked.stdout)}["remote"]
        assert remote["ok"], remote
        assert "reached and written to (a probe ref pushed and deleted)" in remote["detail"]
        assert git(served, "for-each-ref", "refs/wvo/") == ""  # nothing stays
        # Nobody can write: said as such, with what git said.
        hook = served / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\necho read-only mirror >&2\nexit 1\n")
        hook.chmod(0o755)
        refused = init(repo, "doctor", "--json", "--onto", "origin/main")
        said = {c["name"]: c for c in json.loads(refused.stdout)}["remote"]
        assert not said["ok"] and "refused a push" in said["detail"], said
    gone = init(repo, "doctor", "--json", "--onto", "origin/main")
    said = {c["name"]: c for c in json.loads(gone.stdout)}["remote"]
    assert not said["ok"] and "cannot be reached" in said["detail"], said


def test_a_reader_that_stops_early_gets_no_traceback(repo: Path) -> None:
    """`wvo-mcp init --dry-run | head -1`: the pipe closes before init has said it all."""
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the first line: every write fails
    with os.fdopen(writer, "wb") as closed:
        done = subprocess.run(
            [str(WVO), "init", "--dry-run"], cwd=repo, stdout=closed, stderr=subprocess.PIPE,
            text=True, timeout=CLI_TIMEOUT_SECONDS,
            env=fresh_env({"PATH": "/usr/bin:/bin", "HOME": str(repo.parent / "home")}, warm=True),
        )  # fmt: skip
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode == 1
    assert not (repo / ".wvo").exists()


def test_a_misspelt_flag_is_refused_by_its_command_with_the_flag_meant(repo: Path) -> None:
    done = init(repo, "doctor", "--jsn")
    assert done.returncode == 2
    assert "wvo-mcp doctor: error: unrecognized arguments: --jsn (did you mean --json?)" in (
        done.stderr
    ), done.stderr


def test_importing_a_roadmap_again_says_how_to_apply_its_edits(repo: Path) -> None:
    assert init(repo).returncode == 0
    before = run(repo, "status").stdout
    again = run(repo, "import", ".wvo/roadmap.yaml")
    assert again.returncode == 2
    assert "task ids already exist: wvo-start-build, wvo-start-map" in again.stderr
    assert "`wvo-mcp import --update .wvo/roadmap.yaml`" in again.stderr, again.stderr
    assert run(repo, "status").stdout == before


@pytest.mark.skipif(
    not (CLIS / "claude").exists() or not (CLIS / "codex").exists(),
    reason="the Claude Code and Codex CLIs are not installed (scripts/setup)",
)
def test_a_cli_installed_later_becomes_a_provider_on_the_next_init(
    repo: Path, tmp_path: Path
) -> None:
    node = os.path.dirname(shutil.which("node") or "/usr/bin/node")
    assert init(repo, path=alone_on_path(tmp_path / "only-claude", CLIS / "claude")).returncode == 0
    mine = (repo / ".wvo" / "providers.yaml").read_text() + "# my own note\n"
    (repo / ".wvo" / "providers.yaml").write_text(mine)
    # Codex installed since: the next init adds it, keeping every line of the person's.
    both = f"{CLIS}:{node}:/usr/bin:/bin"
    again = init(repo, path=both)
    assert again.returncode == 0, again.stderr
    # (and Gemini CLI, installed beside it in tests/claude_code)
    assert "providers.yaml: added the provider(s) codex, gemini" in again.stdout, again.stdout
    merged = (repo / ".wvo" / "providers.yaml").read_text()
    assert merged.startswith(mine.removesuffix("# my own note\n")) and "# my own note" in merged
    assert f"executable: {CLIS / 'codex'}" in merged
    checked = {c["name"]: c for c in json.loads(init(repo, "doctor", "--json", path=both).stdout)}
    for kind, client in (("claude", ".mcp.json"), ("codex", ".codex/config.toml")):
        said = checked[kind]["detail"]
        assert f"a client of the wvo server ({client}); a provider in {repo / '.wvo'}" in said


# An ACP agent a person may have alone: its CLI, its version, its MCP client file and the
# key there its servers are under, and the variable of the key it signs in with.
ALONE = {
    "gemini": (CLIS / "gemini", "0.61.0", ".gemini/settings.json", "mcpServers",
               "GEMINI_API_KEY"),
    "opencode": (CLIS.parent / "opencode-linux-x64" / "bin" / "opencode", "1.18.33",
                 "opencode.json", "mcp", "ANTHROPIC_API_KEY"),
}  # fmt: skip


@pytest.mark.parametrize("agent", list(ALONE))
def test_a_person_with_only_one_acp_agent_gets_its_provider_and_its_wiring(
    agent: str, repo: Path, tmp_path: Path
) -> None:
    cli, version, client, servers, key = ALONE[agent]
    if not cli.exists() or shutil.which("node") is None:
        pytest.skip(f"{agent} is not installed (scripts/setup)")
    only = tmp_path / f"only-{agent}"
    path = f"{WVO.parent}:{alone_on_path(only, cli)}"
    done = init(repo, path=path)
    assert done.returncode == 0, done.stderr
    assert f"found {agent} {version}" in done.stdout
    found = providers.parse((repo / ".wvo" / "providers.yaml").read_text(), "p").workers
    assert list(found) == [agent]
    worker = found[agent]
    assert (worker.kind, worker.agent, worker.executable) == ("acp", agent, str(only / agent))
    # Its MCP client wiring, for a person's own sessions: .mcp.json's, in its own shape.
    settings = json.loads((repo / client).read_text())
    assert settings[servers]["wvo"] == (
        {"command": "wvo-mcp", "args": ["serve"], "env": {"WVO_TOOLS": "worker"}}
        if agent == "gemini"
        else {"type": "local", "command": ["wvo-mcp", "serve"],
              "environment": {"WVO_TOOLS": "worker"}}
    )  # fmt: skip
    assert client in done.stdout.split("commit these")[-1]
    checked = {c["name"]: c for c in json.loads(init(repo, "doctor", "--json", path=path).stdout)}
    assert checked[f"server from {client}"]["ok"]
    assert not checked[agent]["ok"] and key in checked[agent]["detail"]
    keyed = init(repo, "doctor", "--json", path=path, **{key: "a-key"})
    said = {c["name"]: c for c in json.loads(keyed.stdout)}[agent]
    assert said["ok"] and f"signed in ({key})" in said["detail"]
    assert f"a client of the wvo server ({client}); a provider in" in said["detail"]
    assert "as a worker, metered by its model API's answers" in said["detail"]
