"""Settings, read once from the environment (and CLI flags that override it).

Which state folder they are for is found by `wiring/place.py:chosen`.

Carries out `rules/bounds.py`."""

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules.bounds import MEMORY_RANGE, OUTPUT_BYTES_RANGE, TIMEOUT_RANGE, check_range
from wvo_mcp.rules.identity import check_agent_id
from wvo_mcp.rules.trust import Trust, parse

# Warm start needs Linux (/proc, pidfds, cgroup v2): macOS and others start cold.
WARM_BY_DEFAULT = sys.platform.startswith("linux")

MIB = 1024 * 1024
RECONNECT_RANGE = (1.0, 600.0)  # WVO_DATABASE_RECONNECT_SECONDS


def _int(
    env: Mapping[str, str],
    name: str,
    default: int | None,
    minimum: int = 1,
    *,
    bounds: tuple[int, int] | None = None,
    unit: str = "",
) -> int | None:
    """An integer at least `minimum`, or within `bounds` (both ends accepted) when given."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(f"{name}={raw!r} is not an integer") from None
    if bounds is not None:
        check_range(name, value, bounds, unit)
    elif value < minimum:
        raise ValidationFailed(f"{name}={value} must be at least {minimum}")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """An integer not below 0 (0: off)."""
    value = _int(env, name, default, minimum=0)
    return default if value is None else value


def _float(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    bounds: tuple[float, float] | None = None,
    unit: str = "",
) -> float:
    """A finite number not below 0, or within `bounds` (both ends accepted) when given."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationFailed(f"{name}={raw!r} is not a number") from None
    if bounds is not None:
        check_range(name, value, bounds, unit)  # refuses NaN and infinities too
    elif not math.isfinite(value) or value < 0:
        raise ValidationFailed(f"{name}={raw!r} must be a finite number and must not be negative")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValidationFailed(f"{name}={raw!r} is not a switch; use 1 or 0 (true/false, on/off)")


def _otlp_endpoint_set(env: Mapping[str, str]) -> bool:
    """Telemetry is on by default only when a collector listens: spans and metrics that nobody
    reads cost every call some 10 % (BENCHMARKS.md)."""
    names = ("", "_TRACES", "_METRICS")
    return any(env.get(f"OTEL_EXPORTER_OTLP{name}_ENDPOINT", "").strip() for name in names)


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise ValidationFailed(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return raw


def repositories(listed: str, source: str) -> tuple[str, ...]:
    """OWNER/REPO names (GitHub's) and gitlab:GROUP/…/PROJECT ones (GitLab's webhook),
    comma-separated, lowercase (both forges' names ignore case)."""
    found = []
    for raw in listed.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        path = name.removeprefix("gitlab:")
        if path != name and path.count("/") >= 1 and all(path.split("/")) and " " not in path:
            found.append(name)
            continue
        if name.count("/") != 1 or not all(name.split("/")) or " " in name:
            raise ValidationFailed(f"{source}: {raw.strip()!r} is not OWNER/REPO (or "
                                   "gitlab:GROUP/PROJECT); give them comma-separated, e.g. "
                                   "team/project,team/docs,gitlab:team/sub/app")  # fmt: skip
        found.append(name)
    return tuple(dict.fromkeys(found))


def _signing(env: Mapping[str, str]) -> str:
    """WVO_GITLAB_WEBHOOK_SIGNING_TOKEN: GitLab's webhook signing token, whsec_ and a base64
    key, as GitLab shows it; anything else is refused (never echoed: it is a secret)."""
    raw = env.get("WVO_GITLAB_WEBHOOK_SIGNING_TOKEN", "").strip()
    if not raw:
        return raw
    # Imported only here: every command's process reads this module first, a relay's too.
    from wvo_mcp.rules import gitlab_webhooks

    if gitlab_webhooks.signing_key(raw) is None:
        raise ValidationFailed("WVO_GITLAB_WEBHOOK_SIGNING_TOKEN is not a signing token: give "
                               "the one GitLab's webhook settings show, whsec_ and a base64 "
                               "key")  # fmt: skip
    return raw


def _database_url(env: Mapping[str, str]) -> str | None:
    raw = env.get("WVO_DATABASE_URL", "").strip()
    if not raw:
        return None
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    try:
        urlsplit(raw).port  # noqa: B018 - parses the port, refusing a bad one
    except ValueError:
        scheme = "bad"
    if scheme not in ("postgresql", "postgres"):
        raise ValidationFailed(
            f"WVO_DATABASE_URL must be a postgresql:// URL (for example "
            f"postgresql://wvo@db.example/wvo), not {scheme + '://' if scheme else 'that'}; "
            "leave it unset for the SQLite file in the state folder"
        )
    return raw


def _reconnect_seconds(env: Mapping[str, str]) -> float | None:
    if not env.get("WVO_DATABASE_RECONNECT_SECONDS", "").strip():
        return None
    return _float(env, "WVO_DATABASE_RECONNECT_SECONDS", 0.0, bounds=RECONNECT_RANGE,
                  unit="seconds")  # fmt: skip


def _agent_id(env: Mapping[str, str]) -> str | None:
    """WVO_AGENT_ID, checked; None: the server names its agent (rules/identity.default_name)."""
    raw = env.get("WVO_AGENT_ID") or None
    if raw is None:
        return None
    try:
        return check_agent_id(raw)
    except ValidationFailed as exc:
        raise ValidationFailed(f"WVO_AGENT_ID: {exc}") from None


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
    health_interval_seconds: float = 60.0  # 0: no health monitor in this process
    stale_task_minutes: float = 10.0
    auto_remediate: bool = True
    approval_stuck_minutes: float = 60.0
    health_retention_hours: float = 168.0
    backup_interval_minutes: float = 60.0  # 0: the monitor takes no backups
    retention_days: float = 30.0  # events of finished tasks, rotated telemetry files
    otel_enabled: bool = False  # from_env: on when an OTLP endpoint is set
    telemetry_file_bytes: int = 16 * MIB
    telemetry_total_bytes: int = 128 * MIB
    providers_file: Path | None = None  # None: state_root/providers.yaml, else the packaged one
    agent_provider: str | None = None
    agent_model: str | None = None
    sandbox_backend: str = "auto"  # auto | docker | bwrap | none
    sandbox_allow_unisolated: bool = False
    sandbox_image: str = "python:3.11-slim"
    sandbox_output_bytes: int = 16_384  # per stream; the tail is kept
    verify_timeout_seconds: float = 300.0
    verify_memory_mb: int = 2048
    remote_timeout_seconds: float = 120.0  # one fetch or push; slower holds the merge queue
    # serve --http's GitHub webhook (edge/github_webhooks.py): the secret GitHub signs deliveries
    # with ('' : the endpoint is off), and the label of the issues that are tasks.
    webhook_secret: str = field(default="", repr=False)
    # serve --http's GitLab webhook (edge/gitlab_webhooks.py): the secret token GitLab sends in
    # clear ('' : the endpoint is off), and the signing token (whsec_…) where it signs too.
    gitlab_webhook_secret: str = field(default="", repr=False)
    gitlab_webhook_signing: str = field(default="", repr=False)
    webhook_label: str = "wvo"
    webhook_branch: str = ""  # a red workflow run here makes a task ('': the default branch)
    forge_api: str = ""  # WVO_FORGE_API: GitHub's API base URL ('': api.github.com)
    # Whose words on the forge steer (rules/trust.py): WVO_TRUST_ROLE and WVO_TRUST.
    trust: Trust = field(default_factory=Trust)
    # The repositories the webhook serves (WVO_WEBHOOK_REPOS, or `serve --repo`); empty:
    # those `import github:` synced into this state.
    webhook_repos: tuple[str, ...] = ()
    log_level: str = ""  # debug | info | warning | error; "": warning, or info with the CLI's -v
    tools: str = "all"  # WVO_TOOLS: profiles and tool names (toolset.py)
    database_url: str | None = None  # WVO_DATABASE_URL: PostgreSQL; None: the SQLite file
    # WVO_DATABASE_RECONNECT_SECONDS: how long a call rides out a lost PostgreSQL (a
    # failover's length) before it is refused; None: the store's own 15 s.
    database_reconnect_seconds: float | None = None
    # serve --http's admission control (edge/http_limits.py, docs/http.md); 0 switches one off.
    http_max_inflight: int = 256  # requests at once per process
    http_rate_per_token: float = 50.0  # requests a second per token, on average
    http_burst_per_token: int = 500  # requests per token at once
    # `serve` over stdio handed to a warm process of the state folder (cli/warm_relay.py,
    # cli/warm.py): on Linux unless WVO_WARM_START=0; elsewhere every start is cold.
    warm_start: bool = WARM_BY_DEFAULT
    warm_idle_seconds: float = 600.0  # a warm process with no server left ends after this

    def __post_init__(self) -> None:
        # Absolute once, against the directory the process started in: these paths reach
        # child processes that start elsewhere (a worker in its worktree), where a relative
        # one would name something else. Lexical (abspath), so a link is not resolved away.
        for name in ("state_root", "workspace_root", "providers_file"):
            path = getattr(self, name)
            if path is not None and not path.is_absolute():
                object.__setattr__(self, name, Path(os.path.abspath(path)))

    @property
    def db_path(self) -> Path:
        return self.state_root / "orchestrator.db"

    @property
    def database_label(self) -> str:
        """Where the store is, for people: the SQLite file, or the URL without a password."""
        if self.database_url is None:
            return str(self.db_path)
        url = urlsplit(self.database_url)
        user = f"{url.username}@" if url.username else ""
        port = f":{url.port}" if url.port else ""
        return f"{url.scheme}://{user}{url.hostname or ''}{port}{url.path}"

    @property
    def backups_dir(self) -> Path:
        return self.state_root / "backups" / "db"

    @property
    def telemetry_dir(self) -> Path:
        return self.state_root / "telemetry"

    @property
    def context_file(self) -> Path:
        return self.state_root / "context.md"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, state_root: str | Path | None = None
    ) -> "Settings":
        # The sandbox's own limits (bounds.py), so the verification gate never starts with
        # a value the sandbox would refuse at the first `done`.
        env = os.environ if env is None else env
        root = state_root or env.get("WVO_STATE_ROOT") or "state"
        return cls(
            state_root=Path(root),
            workspace_root=Path(env.get("WVO_WORKSPACE_ROOT") or "."),
            # WVO_WIP_LIMIT binds every agent; its old name, WVO_AUTOPILOT_WIP_LIMIT, is still
            # read when the new one is not set.
            wip_global=_int(env, "WVO_WIP_LIMIT", None)
            or _int(env, "WVO_AUTOPILOT_WIP_LIMIT", 3)
            or 3,
            wip_per_agent=_int(env, "WVO_WIP_PER_AGENT", 1) or 1,
            wip_per_epic=_int(env, "WVO_WIP_PER_EPIC", None),
            agent_id=_agent_id(env),
            default_lease_seconds=_int(env, "WVO_LEASE_SECONDS", 600) or 600,
            retry_base_seconds=_float(env, "WVO_RETRY_BASE_SECONDS", 30.0),
            retry_cap_seconds=_float(env, "WVO_RETRY_CAP_SECONDS", 3600.0),
            context_section_bytes=_int(env, "WVO_CONTEXT_SECTION_BYTES", 16_384) or 16_384,
            context_total_bytes=_int(env, "WVO_CONTEXT_TOTAL_BYTES", 65_536) or 65_536,
            health_interval_seconds=_float(env, "WVO_AUTOPILOT_HEALTH_INTERVAL_MS", 60_000) / 1000,
            stale_task_minutes=_float(env, "WVO_AUTOPILOT_STALE_TASK_MINUTES", 10.0),
            auto_remediate=_bool(env, "WVO_AUTOPILOT_HEALTH_AUTO_REMEDIATE", True),
            approval_stuck_minutes=_float(env, "WVO_AUTOPILOT_APPROVAL_STUCK_MINUTES", 60.0),
            health_retention_hours=_float(env, "WVO_AUTOPILOT_HEALTH_RETENTION_HOURS", 168.0),
            backup_interval_minutes=_float(env, "WVO_BACKUP_INTERVAL_MINUTES", 60.0),
            retention_days=_float(env, "WVO_RETENTION_DAYS", 30.0),
            otel_enabled=_bool(env, "WVO_OTEL_ENABLED", _otlp_endpoint_set(env)),
            telemetry_file_bytes=round(_float(env, "WVO_TELEMETRY_FILE_MB", 16) * MIB) or 1,
            telemetry_total_bytes=round(_float(env, "WVO_TELEMETRY_TOTAL_MB", 128) * MIB) or 1,
            providers_file=Path(env["WVO_PROVIDERS_FILE"])
            if env.get("WVO_PROVIDERS_FILE")
            else None,
            agent_provider=env.get("WVO_AGENT_PROVIDER") or None,
            agent_model=env.get("WVO_AGENT_MODEL") or None,
            sandbox_backend=_choice(
                env, "WVO_SANDBOX_BACKEND", "auto", ("auto", "docker", "bwrap", "none")
            ),
            sandbox_allow_unisolated=_bool(env, "WVO_SANDBOX_ALLOW_UNISOLATED", False),
            tools=env.get("WVO_TOOLS", "").strip() or "all",
            database_url=_database_url(env),
            database_reconnect_seconds=_reconnect_seconds(env),
            http_max_inflight=_count(env, "WVO_HTTP_MAX_INFLIGHT", 256),
            http_rate_per_token=_float(env, "WVO_HTTP_RATE_PER_TOKEN", 50.0),
            http_burst_per_token=_int(env, "WVO_HTTP_BURST_PER_TOKEN", 500) or 500,
            warm_start=_bool(env, "WVO_WARM_START", WARM_BY_DEFAULT),
            warm_idle_seconds=_float(env, "WVO_WARM_IDLE_SECONDS", 600.0),
            log_level=_choice(env, "WVO_LOG_LEVEL", "", ("debug", "info", "warning", "error")),
            sandbox_image=env.get("WVO_SANDBOX_IMAGE", "").strip() or "python:3.11-slim",
            sandbox_output_bytes=_int(
                env, "WVO_SANDBOX_OUTPUT_BYTES", 16_384, bounds=OUTPUT_BYTES_RANGE, unit="bytes"
            )
            or 16_384,
            verify_timeout_seconds=_float(
                env, "WVO_VERIFY_TIMEOUT_SECONDS", 300.0, bounds=TIMEOUT_RANGE, unit="seconds"
            ),
            verify_memory_mb=_int(env, "WVO_VERIFY_MEMORY_MB", 2048, bounds=MEMORY_RANGE, unit="MB")
            or 2048,
            remote_timeout_seconds=_float(
                env, "WVO_REMOTE_TIMEOUT_SECONDS", 120.0, bounds=TIMEOUT_RANGE, unit="seconds"
            ),
            webhook_secret=env.get("WVO_WEBHOOK_SECRET", ""),
            gitlab_webhook_secret=env.get("WVO_GITLAB_WEBHOOK_SECRET", ""),
            gitlab_webhook_signing=_signing(env),
            webhook_label=env.get("WVO_WEBHOOK_LABEL", "").strip().lower() or "wvo",
            webhook_branch=env.get("WVO_WEBHOOK_BRANCH", "").strip(),
            forge_api=env.get("WVO_FORGE_API", "").strip(),
            trust=parse(env.get("WVO_TRUST_ROLE", ""), env.get("WVO_TRUST", "")),
            webhook_repos=repositories(env.get("WVO_WEBHOOK_REPOS", ""), "WVO_WEBHOOK_REPOS"),
        )
