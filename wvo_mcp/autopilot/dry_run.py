"""What `autopilot --dry-run` prints: each provider's workers and what they would reach.

What `wvo-mcp autopilot --dry-run` prints: each provider's workers, what they would see
and reach. Nothing is started."""

import os
from collections.abc import Sequence
from pathlib import Path

from wvo_mcp.autopilot import isolation, worker_config
from wvo_mcp.autopilot.repos import Repos
from wvo_mcp.autopilot.slots import Slot
from wvo_mcp.rules import acp_agents
from wvo_mcp.sandbox import egress, workers
from wvo_mcp.sandbox.toolchain import Toolchain


def describe(
    slots: Sequence[Slot], repos: Repos, toolchain: Toolchain, *, sandboxed: bool
) -> list[str]:
    lines = []
    for provider in dict.fromkeys(s.provider for s in slots):
        slot = next(s for s in slots if s.provider == provider)
        kind = slot.kind
        program, install = workers.installation(kind.program, os.environ.get("PATH"))
        workdir = repos.worktrees / "<task>" / "<run>"
        launch = worker_config.Launch(
            slot.agent_id, "<task>", "<model>", workdir, workers.HOME, "<wvo-mcp>"
        )
        env = worker_config.environment(kind, launch, "<run token>", os.environ)
        argv = worker_config.argv(kind, launch, str(program))
        count = sum(1 for s in slots if s.provider == provider)
        lines.append(f"{provider}: {count} {kind.kind} worker(s), {program}")
        if not sandboxed:
            lines.append(
                "  UNSANDBOXED (--unsandboxed-workers): runs as you, sees your files and "
                f"network, has no resource limits; env: {', '.join(sorted(env))}"
            )
            continue
        apis = [*worker_config.model_apis(kind, os.environ)]
        codex_home = os.environ.get("CODEX_HOME") or str(Path.home() / ".codex")
        found = worker_config.metered(
            kind, os.environ, isolation.api_key_login(Path(codex_home) / "auth.json")
        )
        metered = found[1] if found is not None else None
        if metered is not None:  # its model API only through its run's meter (isolation.py)
            apis = ["http://127.0.0.1:1", *kind.egress]
        elif kind.kind == "codex":
            lines.append(f"  NOT METERED: {worker_config.UNMETERED_CODEX}")
        elif kind.kind == "acp":
            lines.append(f"  NOT METERED: {worker_config.unmetered_acp(kind)}")
        if kind.kind == "acp":
            preset = acp_agents.AGENTS[kind.agent]
            lines.append(
                f"  agent:      {kind.agent} over ACP, its permission requests answered "
                f"{kind.permissions!r}"
                + ("" if preset.reviews else "; never reviews another's checkout")
            )
        view = workers.View(
            workdir=workdir,
            home=Path("<private>"),
            read_only=(
                install,
                *workers.package_dirs(),
                repos.objects(),
                *isolation.mounts(kind),
            ),
            socket=Path("<private>/egress.sock"),
            endpoints=tuple(
                [*(egress.endpoint_of(u) for u in apis), egress.Endpoint("127.0.0.1", 0)]
            ),
            toolchain=toolchain,
            limits=kind.limits,
        )
        meter = f"127.0.0.1:<its run's meter, on to {metered}>"
        lines += [
            line.replace("127.0.0.1:0", "127.0.0.1:<this autopilot's wvo-mcp port>").replace(
                "127.0.0.1:1", meter
            )
            for line in workers.describe(view, argv, env)
        ]
    return lines
