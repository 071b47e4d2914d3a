"""Roadmap YAML: the shipped backlog parses, bad files are refused with useful messages,
and dump/parse round-trips."""

from pathlib import Path

import pytest

from wvo_mcp import roadmap
from wvo_mcp.errors import ValidationFailed
from wvo_mcp.models import TaskSpec
from wvo_mcp.rules.graph import find_cycle

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "state" / "roadmap.yaml"

VALID = """\
version: 1
tasks:
  - id: A.1
    title: First
  - id: A.2
    title: Second
    depends_on: [A.1]
    complexity: 3
"""


def test_shipped_roadmap_parses_into_29_tasks() -> None:
    specs = roadmap.parse(SHIPPED.read_text(), str(SHIPPED))
    assert len(specs) == 29
    assert all(isinstance(spec, TaskSpec) for spec in specs)
    ids = [spec.id for spec in specs]
    assert all(ids), "every shipped task has an explicit id"
    assert len(set(ids)) == 29, "ids repeat"
    assert specs[0].id == "E1.M1.T1"
    assert specs[0].title == "Define the checkout v2 OpenAPI contract"


def test_shipped_roadmap_dependencies_are_internal_and_acyclic() -> None:
    specs = roadmap.load(SHIPPED)
    ids = {spec.id for spec in specs}
    for spec in specs:
        assert set(spec.depends_on) <= ids, f"{spec.id} depends on an unknown task"
    edges = {str(spec.id): list(spec.depends_on) for spec in specs}
    assert find_cycle(edges) is None


def test_load_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(VALID)
    specs = roadmap.load(path)
    assert [spec.id for spec in specs] == ["A.1", "A.2"]
    assert specs[1].depends_on == ["A.1"]
    assert specs[1].complexity == 3
    assert specs[0].complexity == 5  # the default


def test_load_a_missing_file_is_a_validation_failure(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ValidationFailed, match="cannot read"):
        roadmap.load(path)


def test_version_may_be_omitted() -> None:
    specs = roadmap.parse("tasks:\n  - title: only\n")
    assert len(specs) == 1
    assert specs[0].title == "only"
    assert specs[0].id is None


def test_empty_task_list_is_accepted() -> None:
    assert roadmap.parse("version: 1\ntasks: []\n") == []


@pytest.mark.parametrize(
    "text",
    [
        "tasks: [unclosed\n",
        "version: 1\ntasks:\n  - title: x\n   bad: indent\n",
        "tasks:\n\t- title: tab\n",
        "key: 'open quote\n",
    ],
)
def test_bad_yaml_is_refused(text: str) -> None:
    with pytest.raises(ValidationFailed, match=r"my\.yaml is not valid YAML"):
        roadmap.parse(text, "my.yaml")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "just a string\n",
        "- title: a list, not a mapping\n",
        "version: 1\n",
        "version: 1\ntasks:\n",
        "version: 1\ntasks: {title: x}\n",
        "version: 1\ntasks: a string\n",
        "version: 1\ntask:\n  - title: misspelled key\n",
    ],
)
def test_missing_tasks_list_is_refused(text: str) -> None:
    with pytest.raises(
        ValidationFailed, match=r"my\.yaml: expected a mapping with a `tasks:` list"
    ):
        roadmap.parse(text, "my.yaml")


@pytest.mark.parametrize("version", ["2", "0", "'1'", "v1", "null"])
def test_unknown_version_is_refused(version: str) -> None:
    with pytest.raises(ValidationFailed, match=r"version .* is unknown; expected 1"):
        roadmap.parse(f"version: {version}\ntasks: []\n", "my.yaml")


def test_bad_field_names_the_task_number_id_and_field() -> None:
    text = (
        "version: 1\n"
        "tasks:\n"
        "  - id: OK.1\n"
        "    title: fine\n"
        "  - id: OK.2\n"
        "    title: fine too\n"
        "  - id: BAD.3\n"
        "    title: broken\n"
        "    complexity: 99\n"
    )
    with pytest.raises(ValidationFailed) as info:
        roadmap.parse(text, "plan.yaml")
    message = str(info.value)
    assert "plan.yaml" in message
    assert "task #3" in message
    assert "(BAD.3)" in message
    assert "complexity" in message
    assert "OK.1" not in message
    assert "OK.2" not in message


def test_bad_field_without_an_id_names_the_task_number() -> None:
    text = "tasks:\n  - title: one\n  - title: two\n    business_value: 0\n"
    with pytest.raises(ValidationFailed) as info:
        roadmap.parse(text, "plan.yaml")
    message = str(info.value)
    assert "task #2" in message
    assert "business_value" in message


def test_bad_nested_field_names_its_path() -> None:
    text = "tasks:\n  - id: T.1\n    title: x\n    depends_on: ['bad id with spaces']\n"
    with pytest.raises(ValidationFailed) as info:
        roadmap.parse(text)
    message = str(info.value)
    assert "task #1 (T.1)" in message
    assert "depends_on.0" in message


def test_unknown_field_is_refused_by_name() -> None:
    text = "tasks:\n  - id: T.1\n    title: x\n    priority: high\n"
    with pytest.raises(ValidationFailed) as info:
        roadmap.parse(text)
    message = str(info.value)
    assert "task #1 (T.1)" in message
    assert "priority" in message


def test_missing_required_title_is_named() -> None:
    with pytest.raises(ValidationFailed) as info:
        roadmap.parse("tasks:\n  - id: T.1\n")
    assert "task #1 (T.1)" in str(info.value)
    assert "title" in str(info.value)


def test_a_task_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ValidationFailed, match=r"task #1"):
        roadmap.parse("tasks:\n  - just a string\n")


def test_dump_then_parse_round_trips_the_shipped_roadmap() -> None:
    specs = roadmap.load(SHIPPED)
    text = roadmap.dump([spec.model_dump(mode="json") for spec in specs])
    assert text.startswith("#")
    again = roadmap.parse(text)
    assert again == specs


def test_dump_then_parse_round_trips_every_field() -> None:
    spec = TaskSpec(
        id="X.1",
        title="Ünïcode title: with a colon",
        description="line one\nline two\n  indented",
        epic_id="X",
        milestone_id="X.M1",
        depends_on=["X.0", "Y/2"],
        complexity=7,
        business_value=20,
        time_criticality=1,
        risk_reduction=13,
        job_size=3,
        due_at="2031-02-03T04:05:06.789+02:00",
        tags=["a", "b c", "yes", "no"],
        requires_approval=True,
        max_attempts=9,
        metadata={"owner": "team", "nested": {"n": 1, "list": [1, "2", None]}},
    )
    text = roadmap.dump([spec.model_dump(mode="json")])
    assert "Ünïcode" in text  # allow_unicode keeps it readable
    (again,) = roadmap.parse(text)
    assert again == spec


def test_dump_writes_version_1() -> None:
    text = roadmap.dump([])
    assert "version: 1" in text
    assert roadmap.parse(text) == []


DEEP = 3_000  # past what the parsers' recursion, and json.dumps', can take


@pytest.mark.parametrize(
    ("field", "says"),
    [
        ("metadata: {k: .nan}", ["metadata.k is NaN", "JSON numbers must be finite"]),
        ("metadata: {k: [1, .inf]}", ["metadata.k.1 is Infinity", "must be finite"]),
        ("metadata: {k: {a: -.inf}}", ["metadata.k.a is -Infinity", "must be finite"]),
        ("metadata: {when: 2030-01-31}", ["metadata.when holds a date", "quote a date"]),
        ("metadata: {k: !!binary aGk=}", ["metadata.k holds a bytes", "finite number"]),
        ("metadata: {k: {2030-01-31: x}}", ["metadata.k has the key", "strings"]),
        ("metadata: {k: " + "[" * 201 + "]" * 201 + "}", ["more than 200 levels", "at most 200"]),
        ("due_at: 9999-12-31T23:59:59-14:00", ["due_at", "0001-01-01T00:00:00Z to 9999-12-31"]),
        ("due_at: '0001-01-01T00:00:00+14:00'", ["due_at", "once converted to UTC"]),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else None,
)
def test_what_json_or_utc_cannot_hold_is_refused(field: str, says: list[str]) -> None:
    """YAML has NaN, infinities, dates, bytes and non-string keys; none is JSON, and a
    stored task's metadata must be (SQLite's json_valid, every reader). A due date must be
    a time UTC can hold, as the store writes it."""
    with pytest.raises(ValidationFailed) as info:
        roadmap.parse(f"tasks:\n  - id: T.1\n    title: x\n    {field}\n", "plan.yaml")
    message = str(info.value)
    assert message.startswith("plan.yaml: task #1 (T.1): "), message
    for words in says:
        assert words in message, message


def test_metadata_nested_past_what_a_parser_takes_is_refused() -> None:
    # Refused by the depth check once read, or (PyYAML 6.0.4 and later stop at 1000 levels)
    # while reading: either way, saying how deep metadata may nest.
    deep = "[" * DEEP + "]" * DEEP
    with pytest.raises(ValidationFailed) as info:
        roadmap.parse(
            f"tasks:\n  - id: T.1\n    title: x\n    metadata: {{k: {deep}}}\n", "plan.yaml"
        )
    message = str(info.value)
    assert message.startswith("plan.yaml") and "at most 200" in message, message


@pytest.mark.parametrize(
    "metadata",
    ['{"k": NaN}', '{"k": -Infinity}', '{"k": 1e999}', '{"k": ' + "[" * DEEP + "]" * DEEP + "}"],
)
def test_a_json_roadmap_holds_only_json(metadata: str) -> None:
    """Python's json module reads NaN and Infinity, and recurses per level."""
    text = f'{{"tasks": [{{"id": "T.1", "title": "x", "metadata": {metadata}}}]}}'
    with pytest.raises(ValidationFailed, match=r"finite|nested"):
        roadmap.parse(text, "plan.json", as_json=True)


def test_metadata_as_deep_as_a_frame_can_carry_is_kept() -> None:
    nested = "[" * 199 + "]" * 199
    (spec,) = roadmap.parse(f"tasks:\n  - title: x\n    metadata: {{k: {nested}, n: 1.5}}\n")
    assert spec.metadata["n"] == 1.5 and isinstance(spec.metadata["k"], list)
