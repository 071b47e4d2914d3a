"""The providers file: the packaged default, overrides, and refusals naming line and field."""

import json
from pathlib import Path

import pytest

from wvo_mcp import providers
from wvo_mcp.config import Settings
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.rules.routing import Estimate

SMALL = """\
version: 1
providers:
  - name: solo
    preference: 1
    hourly_tokens: 1000
    tiers:
      - name: only
        model: m-1
        complexity: [1, 10]
        input_cost_per_1k: 0.001
        output_cost_per_1k: 0.002
"""


def test_the_packaged_default_has_two_providers_with_three_and_two_tiers(
    tmp_path: Path,
) -> None:
    found = providers.load(Settings(state_root=tmp_path))
    assert found.source == providers.PACKAGED
    assert [(p.name, len(p.tiers)) for p in found.providers] == [("codex", 3), ("claude", 2)]
    codex = found.providers[0]
    assert [(t.min_complexity, t.max_complexity) for t in codex.tiers] == [(1, 3), (4, 7), (8, 10)]


def test_the_packaged_budgets_fit_a_working_day_of_two_workers_per_provider(
    tmp_path: Path,
) -> None:
    found = providers.load(Settings(state_root=tmp_path))
    # A Claude Code run used about 250k tokens with every cache read counted whole (issue
    # 45), so this is an upper bound; two workers finishing a run every five minutes, 8 hours.
    run, per_hour, hours = 250_000, 2 * 12, 8
    for provider in found.providers:
        assert found.workers[provider.name].max_workers == 2
        assert provider.hourly_tokens is not None and provider.daily_tokens is not None
        assert per_hour * run + run <= provider.hourly_tokens  # and one more run reserved
        assert hours * per_hour * run <= provider.daily_tokens
    # Until a band has its own figures, a complexity 5 task is expected to use 150k.
    assert found.estimate(5, {}).total == 150_000
    assert providers.parse(SMALL, "f.yaml").tokens_per_complexity == found.tokens_per_complexity


def test_the_state_folder_file_overrides_the_default_and_the_variable_beats_both(
    tmp_path: Path,
) -> None:
    (tmp_path / "providers.yaml").write_text(SMALL)
    assert providers.load(Settings(state_root=tmp_path)).providers[0].name == "solo"
    other = tmp_path / "other.yaml"
    other.write_text(SMALL.replace("solo", "elsewhere"))
    chosen = providers.load(Settings(state_root=tmp_path, providers_file=other))
    assert chosen.providers[0].name == "elsewhere"
    assert chosen.source == str(other)


def test_providers_are_ordered_by_preference() -> None:
    second = SMALL.split("providers:\n")[1].replace("solo", "first").replace("m-1", "m-2")
    text = SMALL.replace("preference: 1", "preference: 3") + second.replace(
        "preference: 1", "preference: 2"
    )
    found = providers.parse(text, "f.yaml")
    assert [p.name for p in found.providers] == ["first", "solo"]


@pytest.mark.parametrize(
    ("change", "line", "field", "says"),
    [
        (
            ("complexity: [1, 10]", "complexity: [7, 3]"),
            9,
            "providers[0].tiers[0].complexity",
            "backwards",
        ),
        (
            ("complexity: [1, 10]", "complexity: [0, 10]"),
            9,
            "providers[0].tiers[0].complexity[0]",
            "greater than or equal to 1",
        ),
        (
            ("hourly_tokens: 1000", "hourly_tokens: lots"),
            5,
            "providers[0].hourly_tokens",
            "integer",
        ),
        (
            ("hourly_tokens: 1000", "hourly_tokn: 1000"),
            5,
            "providers[0].hourly_tokn",
            "Extra inputs",
        ),
        (("version: 1", "version: 2"), 1, "version", "1"),
        (("    preference: 1\n", ""), 3, "providers[0].preference", "required"),
        (
            ("input_cost_per_1k: 0.001", "input_cost_per_1k: -1"),
            10,
            "providers[0].tiers[0].input_cost_per_1k",
            "greater than or equal to 0",
        ),
    ],
)
def test_a_bad_file_is_refused_with_line_and_field(
    change: tuple[str, str], line: int, field: str, says: str
) -> None:
    with pytest.raises(ValidationFailed) as info:
        providers.parse(SMALL.replace(*change), "mine.yaml")
    message = str(info.value)
    assert f"mine.yaml line {line}: {field}:" in message
    assert says in message


def test_duplicates_are_refused_where_they_are() -> None:
    twice = SMALL + SMALL.split("providers:\n")[1]
    with pytest.raises(ValidationFailed) as info:
        providers.parse(twice, "f.yaml")
    message = str(info.value)
    assert "line 12: providers[1].name: provider 'solo' appears twice" in message
    assert "line 13: providers[1].preference: preference 1 is also 'solo''s" in message


def test_not_yaml_and_not_a_mapping_are_refused() -> None:
    with pytest.raises(ValidationFailed, match="not valid YAML"):
        providers.parse("providers: [", "f.yaml")
    with pytest.raises(ValidationFailed, match=r"f\.yaml line 1: the file"):
        providers.parse("- just a list\n", "f.yaml")


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="cannot read the providers file"):
        providers.load(Settings(state_root=tmp_path, providers_file=tmp_path / "missing.yaml"))


def test_resolve_names_what_exists() -> None:
    found = providers.parse(SMALL, "f.yaml")
    provider, tier = found.resolve("solo", "m-1")
    assert (provider.name, tier.name) == ("solo", "only")
    with pytest.raises(ValidationFailed, match="known: solo"):
        found.resolve("nobody", "m-1")
    with pytest.raises(ValidationFailed, match=r"its models: m-1 \(only\)"):
        found.resolve("solo", "m-9")


def test_estimate_from_complexity_or_metadata() -> None:
    found = providers.parse(SMALL, "f.yaml")
    assert found.estimate(3, {}).total == 90_000
    assert found.estimate(3, {"estimated_tokens": 5_000}).total == 5_000
    assert found.estimate(3, {"estimated_tokens": "many"}).total == 90_000
    learned = Estimate(40_000, 10_000)  # what the class was observed to use
    assert found.estimate(3, {}, learned) == learned
    assert found.estimate(3, {"estimated_tokens": 5_000}, learned).total == 5_000


WORKER = (
    SMALL
    + """\
    worker:
      kind: command
      max_workers: 2
      command: ["my-agent", "--model", "{model}", "--cwd", "{workdir}", "{prompt_file}"]
"""
)


def test_a_worker_block_names_the_cli_for_the_providers_tasks() -> None:
    found = providers.parse(WORKER, "w.yaml")
    kind = found.workers["solo"]
    assert (kind.kind, kind.max_workers, kind.hang_seconds) == ("command", 2, 600.0)
    assert kind.template[0] == "my-agent"
    assert providers.parse(SMALL, "s.yaml").workers == {}


def test_a_worker_block_may_widen_its_sandbox_a_little_and_never_to_wvo_mcp() -> None:
    extra = (
        '      env: [STUB_KEY]\n      egress: ["127.0.0.1:7000"]\n      mounts: ["/opt/tools"]\n'
    )
    kind = providers.parse(WORKER + extra, "w.yaml").workers["solo"]
    assert (kind.env, kind.egress, kind.mounts) == (
        ("STUB_KEY",),
        ("https://127.0.0.1:7000",),
        ("/opt/tools",),
    )
    for bad, says in (
        ("      env: [WVO_DATABASE_URL]\n", "wvo-mcp's own"),
        ('      egress: ["ftp://x"]\n', "host:port"),
        ('      mounts: ["relative"]\n', "absolute"),
    ):
        with pytest.raises(ValidationFailed) as info:
            providers.parse(WORKER + bad, "w.yaml")
        assert says in str(info.value), info.value


@pytest.mark.parametrize(
    ("change", "line", "field", "says"),
    [
        (
            ('"{prompt_file}"]', '"{prompt_file}", "{secret}"]'),
            15,
            "providers[0].worker.command",
            "{secret}",
        ),
        (('"{prompt_file}"]', '"{prompt}"]'), 15, "providers[0].worker.command", "lease token"),
        (("      command: [", "      commands: ["), 15, "providers[0].worker.commands", "Extra"),
        (("kind: command", "kind: claude"), 15, "providers[0].worker.command", "only kind command"),
        (("kind: command", "kind: aider"), 13, "providers[0].worker.kind", "'claude'"),
        (("max_workers: 2", "max_workers: 0"), 14, "providers[0].worker.max_workers", "1"),
    ],
)
def test_a_bad_worker_block_is_refused_with_line_and_field(
    change: tuple[str, str], line: int, field: str, says: str
) -> None:
    with pytest.raises(ValidationFailed) as info:
        providers.parse(WORKER.replace(*change), "w.yaml")
    message = str(info.value)
    assert f"w.yaml line {line}: {field}:" in message, message
    assert says in message


ACP = SMALL + "    worker:\n      kind: acp\n"


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("      agent: gemini\n", ("gemini", "gemini", "allow", None)),
        (
            "      agent: custom\n      executable: /opt/a\n      api: openai\n"
            "      permissions: deny\n",
            ("custom", "/opt/a", "deny", "openai"),
        ),
    ],
)
def test_an_acp_worker_names_its_agent_and_its_permission_policy(
    block: str, expected: tuple[str, str, str, str | None]
) -> None:
    kind = providers.parse(ACP + block, "a.yaml").workers["solo"]
    assert (kind.agent, kind.program, kind.permissions, kind.api) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (ACP, "kind acp needs `agent`: gemini, claude-acp, codex-acp, opencode, custom"),
        (ACP + "      agent: custom\n", "agent custom needs `executable`"),
        (ACP + "      agent: aider\n", "Input should be 'gemini'"),
        (
            ACP + "      agent: gemini\n      permissions: always\n",
            "Input should be 'allow', 'deny' or 'ask'",
        ),
        (WORKER + "      agent: gemini\n", "only kind acp takes `agent`"),
        (WORKER + "      permissions: deny\n", "only kind acp takes `permissions`"),
        (WORKER + "      poll_seconds: 1\n", "only kind acp takes `poll_seconds`"),
        (ACP + "      agent: gemini\n      poll_seconds: 0\n", "greater than or equal to 0.1"),
    ],
)
def test_a_bad_acp_worker_block_is_refused(text: str, says: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        providers.parse(text, "a.yaml")
    assert says in str(info.value), info.value


def test_an_acp_workers_poll_reaches_its_driver_and_defaults_to_5_s(tmp_path: Path) -> None:
    from wvo_mcp.autopilot import acp_driver

    for block, expected in (("", 5.0), ("      poll_seconds: 0.5\n", 0.5)):
        kind = providers.parse(ACP + "      agent: gemini\n" + block, "a.yaml").workers["solo"]
        config = tmp_path / "acp.json"
        written = {"agent": ["gemini"], "cwd": "/w", "mcp_url": "u", "mcp_name": "wvo",
                   "poll_seconds": kind.poll_seconds}  # as worker_config.acp_json does  # fmt: skip
        config.write_text(json.dumps(written))
        assert acp_driver.Config.read(config).poll_seconds == expected


def test_learning_defaults_and_the_packaged_file_agree() -> None:
    packaged = providers.parse(
        (Path(providers.__file__).parent / "data/providers.yaml").read_text(), "p"
    )
    assert packaged.learning == providers.parse(SMALL, "f.yaml").learning
    assert (packaged.learning.enabled, packaged.learning.explore_share) == (True, 0.1)
    assert packaged.pins == ()


def test_learning_settings_and_pins_are_read() -> None:
    text = SMALL + (
        "learning:\n  enabled: false\n  floor: 0.6\n  explore_share: 0.05\n  optimism: 2\n"
        "  pins:\n"
        "    - {epic: E-pay, provider: solo, tier: only}\n"
        "    - {task: T-9, provider: solo, tier: only}\n"
    )
    found = providers.parse(text, "f.yaml")
    learned = found.learning
    assert (learned.enabled, learned.floor, learned.explore_share, learned.optimism) == (
        False,
        0.6,
        0.05,
        2.0,
    )
    assert [(p.epic_id, p.task_id, p.tier) for p in found.pins] == [
        ("E-pay", None, "only"),
        (None, "T-9", "only"),
    ]


@pytest.mark.parametrize(
    ("learning", "says"),
    [
        ("  floor: 1.5\n", "learning.floor: Input should be less than or equal to 1"),
        ("  explore_share: -0.1\n", "learning.explore_share: Input should be greater"),
        ("  optimism: 4\n", "learning.optimism: Input should be less than or equal to 3"),
        ("  pins:\n    - {epic: E, provider: solo, tier: big}\n", "solo/big is not a tier here"),
        (
            "  pins:\n    - {epic: E, task: T, provider: solo, tier: only}\n",
            "give exactly one of `task`",
        ),
        ("  pins:\n    - {provider: solo, tier: only}\n", "give exactly one of `task`"),
        (
            "  pins:\n    - {epic: E, provider: solo, tier: only}\n"
            "    - {epic: E, provider: solo, tier: only}\n",
            "'E' is pinned twice",
        ),
        ("  half_life_outcomes: 5\n", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_learning_section_is_refused_where_it_is(learning: str, says: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        providers.parse(SMALL + "learning:\n" + learning, "f.yaml")
    assert says in str(info.value) and "f.yaml line 1" in str(info.value)
