"""Settings.from_env: defaults, overrides, and refusals that name the variable."""

import dataclasses
import os
from pathlib import Path

import pytest

from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed

INT_VARS = [
    "WVO_WIP_LIMIT",
    "WVO_AUTOPILOT_WIP_LIMIT",
    "WVO_WIP_PER_AGENT",
    "WVO_WIP_PER_EPIC",
    "WVO_LEASE_SECONDS",
]
FLOAT_VARS = [
    "WVO_RETRY_BASE_SECONDS",
    "WVO_RETRY_CAP_SECONDS",
    "WVO_AUTOPILOT_HEALTH_INTERVAL_MS",
    "WVO_AUTOPILOT_STALE_TASK_MINUTES",
    "WVO_AUTOPILOT_APPROVAL_STUCK_MINUTES",
    "WVO_AUTOPILOT_HEALTH_RETENTION_HOURS",
    "WVO_BACKUP_INTERVAL_MINUTES",
    "WVO_RETENTION_DAYS",
    "WVO_TELEMETRY_FILE_MB",
    "WVO_TELEMETRY_TOTAL_MB",
]
SWITCHES = {
    "WVO_AUTOPILOT_HEALTH_AUTO_REMEDIATE": "auto_remediate",
    "WVO_OTEL_ENABLED": "otel_enabled",
}


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.state_root == Path.cwd() / "state"
    assert settings.db_path == Path.cwd() / "state" / "orchestrator.db"
    assert settings.wip_global == 3
    assert settings.wip_per_agent == 1
    assert settings.wip_per_epic is None
    assert settings.agent_id is None
    assert settings.default_lease_seconds == 600
    assert settings.retry_base_seconds == 30.0
    assert settings.retry_cap_seconds == 3600.0


def test_blank_values_mean_the_default() -> None:
    env = dict.fromkeys([*INT_VARS, *FLOAT_VARS, "WVO_AGENT_ID", "WVO_STATE_ROOT"], "")
    env.update(dict.fromkeys(INT_VARS, "   "))
    assert Settings.from_env(env) == Settings()


def test_overrides() -> None:
    env = {
        "WVO_STATE_ROOT": "/srv/wvo",
        "WVO_WIP_LIMIT": "8",
        "WVO_WIP_PER_AGENT": " 2 ",
        "WVO_WIP_PER_EPIC": "4",
        "WVO_AGENT_ID": "codex-1",
        "WVO_LEASE_SECONDS": "90",
        "WVO_RETRY_BASE_SECONDS": "1.5",
        "WVO_RETRY_CAP_SECONDS": "120",
    }
    settings = Settings.from_env(env)
    assert settings.state_root == Path("/srv/wvo")
    assert settings.db_path == Path("/srv/wvo/orchestrator.db")
    assert settings.wip_global == 8
    assert settings.wip_per_agent == 2
    assert settings.wip_per_epic == 4
    assert settings.agent_id == "codex-1"
    assert settings.default_lease_seconds == 90
    assert settings.retry_base_seconds == 1.5
    assert settings.retry_cap_seconds == 120.0


def test_state_root_argument_beats_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"WVO_STATE_ROOT": "/from/env"}, state_root=tmp_path)
    assert settings.state_root == tmp_path
    assert Settings.from_env({}, state_root="rel").state_root == Path.cwd() / "rel"


def test_paths_are_absolute_from_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative paths are made absolute once, against the directory the process started in:
    a child process started elsewhere (a worker in its worktree) gets the same places."""
    monkeypatch.chdir(tmp_path)
    env = {
        "WVO_STATE_ROOT": "state/demo",
        "WVO_WORKSPACE_ROOT": ".",
        "WVO_PROVIDERS_FILE": "conf/../providers.yaml",
    }
    settings = Settings.from_env(env)
    monkeypatch.chdir("/")
    assert settings.state_root == tmp_path / "state" / "demo"
    assert settings.workspace_root == tmp_path
    assert settings.providers_file == tmp_path / "providers.yaml"
    # Links are not resolved away, and replace() keeps the paths absolute too.
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert Settings(state_root=tmp_path / "link").state_root == tmp_path / "link"
    assert dataclasses.replace(settings, workspace_root=Path("x")).workspace_root == Path("/x")


def test_zero_retry_base_is_allowed() -> None:
    assert Settings.from_env({"WVO_RETRY_BASE_SECONDS": "0"}).retry_base_seconds == 0.0


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*INT_VARS, *FLOAT_VARS, "WVO_STATE_ROOT", "WVO_AGENT_ID"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WVO_WIP_LIMIT", "11")
    monkeypatch.setenv("WVO_AGENT_ID", "from-os")
    settings = Settings.from_env()
    assert os.environ["WVO_WIP_LIMIT"] == "11"
    assert settings.wip_global == 11
    assert settings.agent_id == "from-os"


@pytest.mark.parametrize("name", INT_VARS)
@pytest.mark.parametrize("raw", ["three", "2.5", "1e3", "0x10", "--1", "5 6"])
def test_bad_integer_names_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        Settings.from_env({name: raw})
    message = str(info.value)
    assert name in message
    assert "not an integer" in message
    assert repr(raw) in message


@pytest.mark.parametrize("name", INT_VARS)
@pytest.mark.parametrize("raw", ["0", "-1", "-100"])
def test_integer_below_one_names_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        Settings.from_env({name: raw})
    message = str(info.value)
    assert name in message
    assert "at least 1" in message


@pytest.mark.parametrize("name", FLOAT_VARS)
@pytest.mark.parametrize("raw", ["soon", "1,5", "30s"])
def test_bad_number_names_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        Settings.from_env({name: raw})
    assert name in str(info.value)
    assert "not a number" in str(info.value)


@pytest.mark.parametrize("name", FLOAT_VARS)
def test_negative_seconds_name_the_variable(name: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        Settings.from_env({name: "-1"})
    assert name in str(info.value)
    assert "must not be negative" in str(info.value)


@pytest.mark.parametrize("name", FLOAT_VARS)
def test_nan_seconds_are_refused(name: str) -> None:
    # float("nan") passes the `< 0` check. A NaN cap makes every back-off NaN, and
    # timeutil.after() then raises ValueError on the first failed attempt; a NaN base
    # silently turns every back-off into the cap.
    with pytest.raises(ValidationFailed) as info:
        Settings.from_env({name: "nan"})
    assert name in str(info.value)


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.wip_global = 9  # type: ignore[misc]


def test_monitor_backup_and_telemetry_settings() -> None:
    defaults = Settings.from_env({})
    assert defaults.health_interval_seconds == 60.0
    assert defaults.stale_task_minutes == 10.0
    assert defaults.auto_remediate is True
    assert defaults.backup_interval_minutes == 60.0
    assert defaults.otel_enabled is False  # nobody listens: no spans, no files
    assert defaults.backups_dir == Path.cwd() / "state/backups/db"
    assert defaults.telemetry_dir == Path.cwd() / "state/telemetry"
    settings = Settings.from_env(
        {
            "WVO_AUTOPILOT_HEALTH_INTERVAL_MS": "250",
            "WVO_AUTOPILOT_STALE_TASK_MINUTES": "0.01",
            "WVO_AUTOPILOT_HEALTH_AUTO_REMEDIATE": "0",
            "WVO_BACKUP_INTERVAL_MINUTES": "0",
            "WVO_OTEL_ENABLED": "off",
            "WVO_TELEMETRY_FILE_MB": "0.5",
        }
    )
    assert settings.health_interval_seconds == 0.25
    assert settings.stale_task_minutes == 0.01
    assert settings.auto_remediate is False
    assert settings.backup_interval_minutes == 0.0
    assert settings.otel_enabled is False
    assert settings.telemetry_file_bytes == 512 * 1024


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:4318/v1/metrics"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "WVO_OTEL_ENABLED": "0"}, False),
        ({"WVO_OTEL_ENABLED": "1"}, True),
    ],
)
def test_telemetry_is_on_when_a_collector_listens_or_asked(
    env: dict[str, str], enabled: bool
) -> None:
    assert Settings.from_env(env).otel_enabled is enabled


@pytest.mark.parametrize("name", SWITCHES)
@pytest.mark.parametrize(
    ("raw", "value"), [("1", True), ("true", True), (" on ", True), ("0", False), ("No", False)]
)
def test_switches(name: str, raw: str, value: bool) -> None:
    assert getattr(Settings.from_env({name: raw}), SWITCHES[name]) is value


@pytest.mark.parametrize("name", SWITCHES)
def test_a_bad_switch_names_the_variable_and_the_accepted_values(name: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        Settings.from_env({name: "maybe"})
    assert name in str(info.value)
    assert "1 or 0" in str(info.value)


def test_provider_settings() -> None:
    assert Settings.from_env({}).providers_file is None
    settings = Settings.from_env(
        {
            "WVO_PROVIDERS_FILE": "/etc/wvo/providers.yaml",
            "WVO_AGENT_PROVIDER": "codex",
            "WVO_AGENT_MODEL": "gpt-5-codex",
        }
    )
    assert settings.providers_file == Path("/etc/wvo/providers.yaml")
    assert (settings.agent_provider, settings.agent_model) == ("codex", "gpt-5-codex")


def test_the_wip_limits_old_name_is_still_read_and_the_new_one_wins() -> None:
    assert Settings.from_env({"WVO_AUTOPILOT_WIP_LIMIT": "7"}).wip_global == 7
    both = {"WVO_WIP_LIMIT": "5", "WVO_AUTOPILOT_WIP_LIMIT": "7"}
    assert Settings.from_env(both).wip_global == 5
    assert Settings.from_env({}).wip_global == 3


def test_the_database_reconnect_time_is_the_stores_own_unless_set_within_its_range() -> None:
    assert Settings.from_env({}).database_reconnect_seconds is None  # the store's 15 s
    read = Settings.from_env({"WVO_DATABASE_RECONNECT_SECONDS": "2.5"})
    assert read.database_reconnect_seconds == 2.5
    for raw in ("0.5", "601", "nan", "soon"):
        with pytest.raises(ValidationFailed) as info:
            Settings.from_env({"WVO_DATABASE_RECONNECT_SECONDS": raw})
        assert "WVO_DATABASE_RECONNECT_SECONDS" in str(info.value), raw
