"""Named queries and migrations: parsing, numbering, and every query compiling against
the schema the real migrations build."""

import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.fuzzing import EXPECTED_TABLES
from wvo_mcp.store.sql import migrations, parse_queries, queries
from wvo_mcp.store.sqlite import split_statements

ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = ROOT / "wvo_mcp" / "store" / "sql"
PACKAGE = ROOT / "wvo_mcp"


# ---- parse_queries -------------------------------------------------------------------


def test_parse_queries_splits_on_name_headers() -> None:
    text = (
        "-- A preamble comment that belongs to no query.\n"
        "\n"
        "-- name: first\n"
        "SELECT 1;\n"
        "\n"
        "-- name: second_one\n"
        "SELECT 2\n"
        "FROM t;\n"
    )
    parsed = parse_queries(text)
    assert list(parsed) == ["first", "second_one"]
    assert parsed["first"] == "SELECT 1;"
    assert parsed["second_one"] == "SELECT 2\nFROM t;"


def test_parse_queries_strips_comment_lines() -> None:
    text = (
        "-- name: q\n"
        "-- what q does\n"
        "-- and more about it\n"
        "SELECT *\n"
        "-- a comment between lines\n"
        "FROM t;\n"
        "-- trailing comment\n"
    )
    parsed = parse_queries(text)
    assert parsed == {"q": "SELECT *\nFROM t;"}
    assert "--" not in parsed["q"]


def test_parse_queries_without_headers_is_empty() -> None:
    assert parse_queries("") == {}
    assert parse_queries("-- just a comment\nSELECT 1;\n") == {}


def test_parse_queries_header_needs_its_own_line() -> None:
    # "-- name:" only counts at the start of a line, followed by a bare word.
    parsed = parse_queries("-- name: a\nSELECT '-- name: b';\n")
    assert list(parsed) == ["a"]


def test_parse_queries_refuses_a_duplicate_name() -> None:
    text = "-- name: twice\nSELECT 1;\n-- name: other\nSELECT 2;\n-- name: twice\nSELECT 3;\n"
    with pytest.raises(ValueError, match="'twice'"):
        parse_queries(text)


def test_shipped_queries_parse_without_duplicates() -> None:
    text = (SQL_DIR / "sqlite" / "queries.sql").read_text()
    headers = re.findall(r"^-- name: (\w+)\s*$", text, re.MULTILINE)
    parsed = queries()
    assert len(headers) == len(set(headers)), "a query name is repeated"
    assert list(parsed) == headers
    for name, sql in parsed.items():
        assert sql, f"{name} is empty"
        assert not any(line.startswith("--") for line in sql.splitlines()), name


def test_every_query_the_code_uses_exists() -> None:
    pattern = re.compile(r"\btx\.(?:run|many|one|all|iter|value)\(\s*\"(\w+)\"")
    used = {name for path in PACKAGE.rglob("*.py") for name in pattern.findall(path.read_text())}
    assert used, "found no query uses; the pattern is out of date"
    missing = used - set(queries())
    assert not missing, f"used but not defined in queries.sql: {sorted(missing)}"


# ---- migrations ----------------------------------------------------------------------


def test_migrations_are_numbered_one_to_n() -> None:
    found = migrations()
    assert found, "no migrations"
    assert [version for version, _, _ in found] == list(range(1, len(found) + 1))
    for version, name, script in found:
        assert re.fullmatch(r"\d{4}_\w+\.sql", name), name
        assert int(name[:4]) == version
        assert script.strip()
        assert script == (SQL_DIR / "sqlite" / "migrations" / name).read_text()


def test_migrations_cover_every_sql_file_on_disk() -> None:
    on_disk = sorted(p.name for p in (SQL_DIR / "sqlite" / "migrations").glob("*.sql"))
    assert [name for _, name, _ in migrations()] == on_disk


def migrated() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    for version, _, script in migrations():
        for statement in split_statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
    return conn


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = migrated()
    yield conn
    conn.close()


def test_migrations_build_the_schema(db: sqlite3.Connection) -> None:
    names = {
        (kind, name)
        for kind, name in db.execute("SELECT type, name FROM sqlite_master WHERE sql IS NOT NULL")
    }
    tables = {name for kind, name in names if kind == "table"}
    assert tables >= EXPECTED_TABLES
    triggers = {name for kind, name in names if kind == "trigger"}
    assert {
        "tasks_counted_on_insert",
        "tasks_counted_on_update",
        "tasks_counted_on_delete",
    } <= triggers
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(migrations())
    buckets = {row[0] for row in db.execute("SELECT bucket FROM queue_counts")}
    assert len(buckets) == 9
    assert "ready" in buckets


def test_split_statements_keeps_trigger_bodies_whole() -> None:
    script = migrations()[0][2]
    statements = list(split_statements(script))
    triggers = [s for s in statements if s.lstrip().upper().startswith("CREATE TRIGGER")]
    assert len(triggers) == 3
    for trigger in triggers:
        assert trigger.rstrip().upper().endswith("END;")
        assert sqlite3.complete_statement(trigger)
    assert all(sqlite3.complete_statement(s) for s in statements)


def none_params(conn: sqlite3.Connection, sql: str) -> dict[str, None] | list[None]:
    """Bind values (all None) of the shape `sql` needs, as sqlite3 counts them."""
    named: defaultdict[str, None] = defaultdict(lambda: None)
    try:
        conn.execute(f"EXPLAIN {sql}", named)
        return named
    except sqlite3.ProgrammingError as exc:
        if "no name" not in str(exc):
            raise
    # Positional: sqlite3 says how many it wants when given the wrong number.
    try:
        conn.execute(f"EXPLAIN {sql}", [None] * 1000)
    except sqlite3.ProgrammingError as exc:
        match = re.search(r"statement uses (\d+)", str(exc))
        assert match, f"unexpected binding error: {exc}"
        return [None] * int(match.group(1))
    raise AssertionError("a statement accepted 1000 bindings")


@pytest.mark.parametrize("name", list(queries()))
def test_query_compiles_against_the_migrated_schema(db: sqlite3.Connection, name: str) -> None:
    sql = queries()[name]
    params = none_params(db, sql)
    rows = db.execute(f"EXPLAIN {sql}", params).fetchall()
    assert rows, f"{name} compiled to no program"
    # A named query is one statement, not several.
    assert sqlite3.complete_statement(sql)
    assert not sql.rstrip().rstrip(";").count(";"), f"{name} holds more than one statement"


def test_named_and_positional_queries_are_detected(db: sqlite3.Connection) -> None:
    assert isinstance(none_params(db, queries()["list_tasks"]), defaultdict)
    assert none_params(db, queries()["insert_event"]) == [None] * 8
    assert none_params(db, queries()["set_score"]) == [None] * 4
    # "?, ?, ?3, ?3, ?4": four distinct parameters.
    assert none_params(db, queries()["renew_lease"]) == [None] * 4
    assert none_params(db, queries()["all_tasks"]) in ([], {})
