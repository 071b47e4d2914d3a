"""The providers file: providers, model tiers, budgets, breakers and the CLI each runs.

The providers file: which providers and model tiers exist, with their budgets, caps and
breakers, and the CLI (worker kind) the autopilot runs for each. The packaged default is
overridden by $WVO_STATE_ROOT/providers.yaml or by WVO_PROVIDERS_FILE; a file that does not
validate is refused with the line at fault."""

import functools
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules import acp_agents, breakers, routing
from wvo_mcp.rules.bounds import CPU_WEIGHT_RANGE, MEMORY_RANGE, PIDS_RANGE, TMP_RANGE
from wvo_mcp.rules.learning import Pin, Policy
from wvo_mcp.rules.wire import Api
from wvo_mcp.sandbox import egress
from wvo_mcp.sandbox.request import WorkerLimits
from wvo_mcp.sandbox.toolchain import Spec as ToolchainRules
from wvo_mcp.sandbox.toolchain import relative as toolchain_folder

PACKAGED = "packaged default"
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Tokens = Annotated[int, Field(ge=1)]
Cost = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Complexity = Annotated[int, Field(ge=1, le=10)]


# -- the autopilot's worker kinds, as the providers file declares them -----------------

Kind = Literal["claude", "codex", "command", "acp"]
# What a `command` template may use; anything else in braces is refused when the file loads.
# The prompt carries the lease token: it goes to stdin and to {prompt_file}, never argv.
PLACEHOLDERS = ("prompt_file", "model", "workdir", "mcp_config", "mcp_url", "agent_id", "task_id")
# Claude Code edits files without asking (acceptEdits) and may use only these tools; it
# refuses bypassPermissions when run as root, and a prompt would hang a headless run.
CLAUDE_ALLOWED_TOOLS = ("mcp__wvo", "Read", "Edit", "Write", "Glob", "Grep", "Bash")


@dataclass(frozen=True)
class WorkerKind:
    """How one provider's tasks are worked: which CLI, how many at once, what to add."""

    kind: Kind
    max_workers: int = 1
    executable: str = ""  # "" : the kind's own name on PATH
    extra_args: tuple[str, ...] = ()
    template: tuple[str, ...] = ()  # kind "command" only
    allowed_tools: tuple[str, ...] = CLAUDE_ALLOWED_TOOLS  # kind "claude" only
    hang_seconds: float = 600.0  # no output and no heartbeat for this long: killed
    env: tuple[str, ...] = ()  # more variable names passed from the autopilot's environment
    egress: tuple[str, ...] = ()  # more URLs (or host:port) the worker may reach
    mounts: tuple[str, ...] = ()  # more host folders it sees, read-only
    limits: WorkerLimits = field(default_factory=WorkerLimits)  # what each of its runs may use
    agent: str = "custom"  # kind "acp" only: which agent (rules/acp_agents.py)
    permissions: Literal["allow", "deny", "ask"] = "allow"  # kind "acp": its permission requests
    poll_seconds: float = acp_agents.POLL_SECONDS  # kind "acp": how often its driver reads its task
    # kind "acp": its model API (custom's; OpenCode's, Anthropic's by default)
    api: Api | None = None

    @property
    def program(self) -> str:
        """The CLI to run, as the providers file names it (a path, or a name on PATH)."""
        if self.executable:
            return self.executable
        if self.kind == "acp":
            return acp_agents.AGENTS[self.agent].program
        return self.template[0] if self.kind == "command" and self.template else self.kind


def template_problems(template: Sequence[str]) -> list[str]:
    """What is wrong with a `command` template: unknown or malformed placeholders."""
    problems = []
    for part in template:
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(part) if name is not None]
        except ValueError as exc:
            problems.append(f"{part!r}: {exc}")
            continue
        if "prompt" in names:
            problems.append(
                f"{part!r} uses {{prompt}}: the prompt carries the task's lease token, and a "
                "command line is readable by every local user; use {prompt_file} (or read "
                "the prompt from stdin)"
            )
        unknown = [name for name in names if name not in (*PLACEHOLDERS, "prompt")]
        if unknown:
            problems.append(
                f"{part!r} uses {', '.join('{' + n + '}' for n in unknown)}; "
                f"known: {', '.join('{' + n + '}' for n in PLACEHOLDERS)}"
            )
    return problems


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TierSpec(_Spec):
    name: Name
    model: Annotated[str, Field(min_length=1, max_length=200)]
    complexity: tuple[Complexity, Complexity]
    input_cost_per_1k: Cost
    output_cost_per_1k: Cost


class BreakerSpec(_Spec):
    failure_threshold: Annotated[int, Field(ge=1)] = 3
    cooldown_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 30.0
    cooldown_cap_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 900.0


Arg = Annotated[str, Field(max_length=4096)]
# A variable a worker may be given: a plain name (never one of wvo-mcp's own: see _problems).
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


def _within(bounds: tuple[float, float]) -> Any:
    return Field(ge=bounds[0], le=bounds[1])


_DEFAULT = WorkerLimits()


class LimitsSpec(_Spec):
    """What each run of a provider's worker may use (docs/security.md, "Resource limits")."""

    memory_mb: Annotated[int, _within(MEMORY_RANGE)] = _DEFAULT.memory_mb
    pids: Annotated[int, _within(PIDS_RANGE)] = _DEFAULT.pids
    tmp_mb: Annotated[int, _within(TMP_RANGE)] = _DEFAULT.tmp_mb
    home_mb: Annotated[int, _within(TMP_RANGE)] = _DEFAULT.home_mb
    cpu_weight: Annotated[int, _within(CPU_WEIGHT_RANGE)] = _DEFAULT.cpu_weight


class WorkerSpec(_Spec):
    """The CLI the autopilot launches for this provider's tasks."""

    kind: Kind
    max_workers: Annotated[int, Field(ge=1, le=64)] = 1
    executable: Annotated[str, Field(max_length=4096)] = ""
    extra_args: Annotated[list[Arg], Field(max_length=64)] = Field(default_factory=list)
    command: Annotated[list[Arg], Field(max_length=64)] | None = None
    allowed_tools: Annotated[list[Name], Field(max_length=64)] | None = None
    hang_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 600.0
    # What the worker's sandbox lets through besides its kind's own (docs/autopilot.md):
    # variables passed from the autopilot's environment, URLs (or host:port) it may reach,
    # host folders it sees read-only.
    env: Annotated[list[EnvName], Field(max_length=64)] = Field(default_factory=list)
    egress: Annotated[list[Arg], Field(max_length=64)] = Field(default_factory=list)
    mounts: Annotated[list[Arg], Field(max_length=64)] = Field(default_factory=list)
    limits: LimitsSpec = LimitsSpec()
    # kind acp: the agent (a preset, or custom with `executable`), how its permission
    # requests are answered, and its model API (custom's; OpenCode's other than Anthropic's).
    agent: Literal["gemini", "opencode", "claude-acp", "codex-acp", "custom"] | None = None
    permissions: Literal["allow", "deny", "ask"] = "allow"
    api: Api | None = None
    # kind acp: how often its driver reads its task for a person's words, a pause or a drain.
    poll_seconds: Annotated[
        float, _within(acp_agents.POLL_SECONDS_RANGE), Field(allow_inf_nan=False)
    ] = acp_agents.POLL_SECONDS


class ProviderSpec(_Spec):
    name: Name
    preference: Annotated[int, Field(ge=1)]
    hourly_tokens: Tokens | None = None
    daily_tokens: Tokens | None = None
    max_concurrent: Annotated[int, Field(ge=1)] | None = None
    breaker: BreakerSpec = BreakerSpec()
    tiers: Annotated[list[TierSpec], Field(min_length=1)]
    worker: WorkerSpec | None = None


class EstimateSpec(_Spec):
    tokens_per_complexity: Tokens = 30_000
    output_share: Annotated[float, Field(ge=0, le=1)] = 0.2


class ToolchainSpec(_Spec):
    """The project's toolchain folders: besides those found (toolchain.FOUND), and found
    ones left out; relative to the repository's top."""

    folders: Annotated[list[Arg], Field(max_length=32)] = Field(default_factory=list)
    exclude: Annotated[list[Arg], Field(max_length=32)] = Field(default_factory=list)


Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class PinSpec(_Spec):
    """A route a person fixes for one task or one epic: routing never overrides it."""

    task: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    epic: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    provider: Name
    tier: Name


class LearningSpec(_Spec):
    """Routing that learns the cost per landed change (docs/routing.md)."""

    enabled: bool = True
    floor: Share = 0.0  # least first-try landing rate a learned route may have
    explore_share: Share = 0.1  # most of the attempts that may try a less-known route
    optimism: Annotated[float, Field(ge=0, le=3)] = 1.0  # doubt given a less-known route
    pins: Annotated[list[PinSpec], Field(max_length=1000)] = Field(default_factory=list)


def _under_the_top(given: str) -> str:
    if given.startswith("/") or ".." in given.split("/"):
        raise ValueError("give a path under the repository's top: not absolute, no `..`")
    return given


# Under the repository's top: neither absolute nor climbing out.
RelativeGlob = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_under_the_top)]


class GateSpec(_Spec):
    """What the landing gate takes as a check's pass (docs/autopilot.md, "The gate")."""

    # A check that ran no test passes anything, so it is refused, unless the project means
    # it (a lint or a build as its check): why, as a person would say it.
    allow_no_tests: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    # Where the check writes its JUnit XML report, under the checkout (a glob): a report of
    # no test is a check that ran no test; a failing one names its tests.
    junit: RelativeGlob | None = None
    # A check whose tests fail is run again on the same tree, at most this many times,
    # before anything is blamed: a failure that does not come back is a flake.
    reruns: Annotated[int, Field(ge=0, le=10)] = 2


class ProvidersFile(_Spec):
    version: Literal[1]
    estimate: EstimateSpec = EstimateSpec()
    providers: Annotated[list[ProviderSpec], Field(min_length=1)]
    toolchain: ToolchainSpec = ToolchainSpec()
    learning: LearningSpec = LearningSpec()
    gate: GateSpec = GateSpec()


@dataclass(frozen=True)
class Gate:
    """The landing gate's rules from the providers file (GateSpec)."""

    allow_no_tests: str | None = None  # why a check may run no test here; None: it may not
    junit: str | None = None  # where the check writes its JUnit report, under its checkout
    reruns: int = 2  # of a check whose tests fail, on the same tree, before it is blamed


@dataclass(frozen=True)
class Providers:
    """The providers in force, in preference order."""

    source: str
    providers: tuple[routing.Provider, ...]
    tokens_per_complexity: int
    output_share: float
    workers: Mapping[str, WorkerKind] = field(default_factory=dict)  # by provider
    toolchain: ToolchainRules = field(default_factory=ToolchainRules)
    learning: Policy = field(default_factory=Policy)
    pins: tuple[Pin, ...] = ()
    gate: Gate = field(default_factory=Gate)

    def get(self, name: str) -> routing.Provider | None:
        return next((p for p in self.providers if p.name == name), None)

    def estimate(
        self,
        complexity: int,
        metadata: dict[str, Any],
        observed: routing.Estimate | None = None,
    ) -> routing.Estimate:
        """Tokens a task is expected to use: metadata.estimated_tokens, else what its class
        was observed to use (`observed`), else by complexity."""
        given = metadata.get("estimated_tokens")
        if isinstance(given, int) and not isinstance(given, bool) and given > 0:
            output = round(given * self.output_share)
            return routing.Estimate(given - output, output)
        if observed is not None:
            return observed
        return routing.estimate(complexity, self.tokens_per_complexity, self.output_share)

    def resolve(self, provider: str, model: str) -> tuple[routing.Provider, routing.Tier]:
        """A provider and one of its models, or an error listing what exists."""
        found = self.get(provider)
        if found is None:
            known = ", ".join(p.name for p in self.providers)
            raise ValidationFailed(
                f"provider {provider!r} is not in the providers file ({self.source}); "
                f"known: {known}"
            )
        tier = found.tier_for_model(model)
        if tier is None:
            known = ", ".join(f"{t.model} ({t.name})" for t in found.tiers)
            raise ValidationFailed(
                f"model {model!r} is not a tier of provider {provider!r} ({self.source}); "
                f"its models: {known}"
            )
        return found, tier


def path_for(settings: Settings) -> Path | None:
    """The file in force: WVO_PROVIDERS_FILE, else the state folder's, else None (packaged)."""
    if settings.providers_file is not None:
        return settings.providers_file
    local = settings.state_root / "providers.yaml"
    return local if local.exists() else None


def load(settings: Settings) -> Providers:
    path = path_for(settings)
    if path is None:
        return _packaged()
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationFailed(f"cannot read the providers file {path}: {exc.strerror}") from None
    return parse(text, str(path))


@functools.cache
def _packaged() -> Providers:
    """The packaged providers, parsed once a process (a warm process parses them for every
    server it forks: pure-Python YAML is a tenth of such a server's start)."""
    return parse(resources.files("wvo_mcp").joinpath("data/providers.yaml").read_text(), PACKAGED)


def parse(text: str, source: str) -> Providers:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed(f"{source} is not valid YAML: {exc}") from None
    try:
        spec = ProvidersFile.model_validate(document)
    except ValidationError as exc:
        problems = [(tuple(e["loc"]), e["msg"]) for e in exc.errors()]
        raise ValidationFailed(_described(source, root, problems)) from None
    problems = _inconsistencies(spec)
    if problems:
        raise ValidationFailed(_described(source, root, problems))
    ordered = sorted(spec.providers, key=lambda p: p.preference)
    return Providers(
        source=source,
        providers=tuple(_provider(p) for p in ordered),
        tokens_per_complexity=spec.estimate.tokens_per_complexity,
        output_share=spec.estimate.output_share,
        workers={p.name: _worker(p.worker) for p in ordered if p.worker is not None},
        toolchain=ToolchainRules(tuple(spec.toolchain.folders), tuple(spec.toolchain.exclude)),
        learning=Policy(
            enabled=spec.learning.enabled,
            floor=spec.learning.floor,
            explore_share=spec.learning.explore_share,
            optimism=spec.learning.optimism,
        ),
        pins=tuple(
            Pin(p.provider, p.tier, task_id=p.task, epic_id=p.epic) for p in spec.learning.pins
        ),
        gate=Gate(spec.gate.allow_no_tests, spec.gate.junit, spec.gate.reruns),
    )


def _inconsistencies(spec: ProvidersFile) -> list[tuple[tuple[Any, ...], str]]:
    """What a schema cannot say: unique names and preferences, sensible ranges."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    seen: dict[str, int] = {}
    preferences: dict[int, str] = {}
    for i, provider in enumerate(spec.providers):
        where = ("providers", i)
        if provider.name in seen:
            problems.append(((*where, "name"), f"provider {provider.name!r} appears twice"))
        seen[provider.name] = i
        if provider.preference in preferences:
            problems.append(
                (
                    (*where, "preference"),
                    f"preference {provider.preference} is also "
                    f"{preferences[provider.preference]!r}'s; each provider needs its own",
                )
            )
        preferences[provider.preference] = provider.name
        names: set[str] = set()
        models: set[str] = set()
        for j, tier in enumerate(provider.tiers):
            at = (*where, "tiers", j)
            low, high = tier.complexity
            if low > high:
                problems.append(((*at, "complexity"), f"range [{low}, {high}] is backwards"))
            if tier.name in names:
                problems.append(((*at, "name"), f"tier {tier.name!r} appears twice"))
            if tier.model in models:
                problems.append(((*at, "model"), f"model {tier.model!r} is already a tier"))
            names.add(tier.name)
            models.add(tier.model)
        problems += _worker_problems(provider.worker, (*where, "worker"))
    for key in ("folders", "exclude"):
        for i, given in enumerate(getattr(spec.toolchain, key)):
            try:
                toolchain_folder(given)
            except ValidationFailed as exc:
                problems.append((("toolchain", key, i), str(exc)))
        hourly, daily = provider.hourly_tokens, provider.daily_tokens
        if hourly is not None and daily is not None and hourly > daily:
            problems.append(((*where, "hourly_tokens"), f"{hourly} is above daily_tokens {daily}"))
    return problems + _pin_problems(spec)


def _pin_problems(spec: ProvidersFile) -> list[tuple[tuple[Any, ...], str]]:
    tiers = {(p.name, t.name) for p in spec.providers for t in p.tiers}
    problems: list[tuple[tuple[Any, ...], str]] = []
    pinned: set[tuple[str | None, str | None]] = set()
    for i, pin in enumerate(spec.learning.pins):
        at = ("learning", "pins", i)
        if (pin.task is None) == (pin.epic is None):
            problems.append((at, "give exactly one of `task` (a task id) or `epic` (an epic id)"))
        elif (pin.task, pin.epic) in pinned:
            problems.append((at, f"{pin.task or pin.epic!r} is pinned twice"))
        pinned.add((pin.task, pin.epic))
        if (pin.provider, pin.tier) not in tiers:
            known = ", ".join(f"{p}/{t}" for p, t in sorted(tiers))
            problems.append(
                ((*at, "tier"), f"{pin.provider}/{pin.tier} is not a tier here; known: {known}")
            )
    return problems


def _described(
    source: str, root: yaml.Node | None, problems: list[tuple[tuple[Any, ...], str]]
) -> str:
    lines = []
    for loc, message in problems[:5]:
        field = _dotted(loc) or "the file"
        line = _line(root, loc)
        lines.append(f"{source}{'' if line is None else f' line {line}'}: {field}: {message}")
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return "invalid providers file: " + "; ".join(lines) + more


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the node at `loc`, or of the deepest node on its way that exists."""
    node = root
    if node is None:
        return None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


def _provider(spec: ProviderSpec) -> routing.Provider:
    return routing.Provider(
        name=spec.name,
        tiers=tuple(
            routing.Tier(
                name=t.name,
                model=t.model,
                min_complexity=t.complexity[0],
                max_complexity=t.complexity[1],
                input_cost_per_1k=t.input_cost_per_1k,
                output_cost_per_1k=t.output_cost_per_1k,
            )
            for t in spec.tiers
        ),
        hourly_tokens=spec.hourly_tokens,
        daily_tokens=spec.daily_tokens,
        max_concurrent=spec.max_concurrent,
        breaker=breakers.BreakerPolicy(
            failure_threshold=spec.breaker.failure_threshold,
            cooldown_seconds=spec.breaker.cooldown_seconds,
            cooldown_cap_seconds=spec.breaker.cooldown_cap_seconds,
        ),
    )


def _worker_problems(
    spec: WorkerSpec | None, where: tuple[Any, ...]
) -> list[tuple[tuple[Any, ...], str]]:
    if spec is None:
        return []
    problems: list[tuple[tuple[Any, ...], str]] = []
    if spec.kind == "command":
        if not spec.command:
            problems.append(
                (
                    (*where, "command"),
                    "kind command needs `command`: the argv, e.g. "
                    '["my-agent", "--model", "{model}", "--prompt-file", "{prompt_file}"]',
                )
            )
        else:
            problems += [((*where, "command"), p) for p in template_problems(spec.command)]
    elif spec.command is not None:
        problems.append(
            ((*where, "command"), f"only kind command takes `command`, not {spec.kind}")
        )
    if spec.allowed_tools is not None and spec.kind != "claude":
        problems.append(((*where, "allowed_tools"), "only kind claude takes `allowed_tools`"))
    if spec.kind == "acp":
        if spec.agent is None:
            problems.append(
                ((*where, "agent"), "kind acp needs `agent`: " + ", ".join(acp_agents.AGENTS))
            )
        elif spec.agent == "custom" and not spec.executable:
            problems.append(((*where, "executable"), "agent custom needs `executable`: its CLI"))
    else:
        acp_only = (
            ("agent", spec.agent is not None),
            ("api", spec.api is not None),
            ("permissions", spec.permissions != "allow"),
            ("poll_seconds", spec.poll_seconds != acp_agents.POLL_SECONDS),
        )
        problems += [
            ((*where, name), f"only kind acp takes `{name}`") for name, given in acp_only if given
        ]
    for i, given in enumerate(spec.egress):
        try:
            egress.endpoint_of(given if "://" in given else f"https://{given}")
        except ValidationFailed as exc:
            problems.append(((*where, "egress", i), f"{exc} (a URL, or host:port)"))
    problems += [
        (
            (*where, "env", i),
            f"{name} is wvo-mcp's own: a worker reaches wvo-mcp with its run token",
        )
        for i, name in enumerate(spec.env)
        if name.upper().startswith("WVO_")
    ]
    problems += [
        ((*where, "mounts", i), f"{given!r} is not an absolute path")
        for i, given in enumerate(spec.mounts)
        if not given.startswith("/")
    ]
    return problems


def _worker(spec: WorkerSpec) -> WorkerKind:
    return WorkerKind(
        kind=spec.kind,
        max_workers=spec.max_workers,
        executable=spec.executable,
        extra_args=tuple(spec.extra_args),
        template=tuple(spec.command or ()),
        allowed_tools=(
            tuple(spec.allowed_tools) if spec.allowed_tools is not None else CLAUDE_ALLOWED_TOOLS
        ),
        hang_seconds=spec.hang_seconds,
        env=tuple(spec.env),
        egress=tuple(g if "://" in g else f"https://{g}" for g in spec.egress),
        mounts=tuple(spec.mounts),
        limits=WorkerLimits(**spec.limits.model_dump()),
        agent=spec.agent or "custom",
        permissions=spec.permissions,
        api=spec.api,
        poll_seconds=spec.poll_seconds,
    )
