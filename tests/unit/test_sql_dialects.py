"""The PostgreSQL dialect against the SQLite one: the same query names and parameters, and
on a throwaway PostgreSQL cluster, the schema migrating, every query preparing with the
columns SQLite answers (never numeric or boolean), the queue-count triggers counting as
SQLite's do, and text ordered by bytes whatever the database's locale."""

import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import anyio
import psycopg
import pytest
from psycopg import pq
from psycopg.rows import dict_row

from tests.conftest import migrate
from tests.pgcluster import Cluster
from tests.security.fuzzing import EXPECTED_TABLES as TABLES
from tests.unit.test_sql import migrated, none_params
from wvo_mcp.store.postgres import PostgresDatabase
from wvo_mcp.store.sql import migrations, queries
from wvo_mcp.store.sqlite import SqliteTx

SQLITE = queries("sqlite")
POSTGRES = queries("postgres")
# What the services may get back: str, int, float (text, bigint, integer, double precision).
ALLOWED_RESULT_TYPES = {"text": 25, "int8": 20, "int4": 23, "float8": 701}


# ---- the files alone -----------------------------------------------------------------


def _without_literals(sql: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def sqlite_params(sql: str) -> tuple[set[str], int]:
    """(names, how many positional) an SQLite statement takes."""
    sql = _without_literals(sql)
    names = set(re.findall(r"(?<![:\w]):(\w+)", sql))
    numbered = [int(n) for n in re.findall(r"\?(\d+)", sql)]
    plain = len(re.findall(r"\?(?!\d)", sql))
    return names, max([*numbered, plain]) if numbered else plain


def postgres_params(sql: str) -> tuple[set[str], int]:
    sql = _without_literals(sql).replace("%%", "")
    return set(re.findall(r"%\((\w+)\)s", sql)), len(re.findall(r"%s", sql))


def test_both_dialects_define_the_same_queries_in_the_same_order() -> None:
    assert list(POSTGRES) == list(SQLITE)


@pytest.mark.parametrize("name", list(SQLITE))
def test_postgres_query_takes_the_sqlite_parameters(name: str) -> None:
    assert postgres_params(POSTGRES[name]) == sqlite_params(SQLITE[name])


@pytest.mark.parametrize("name", list(POSTGRES))
def test_postgres_query_is_written_for_psycopg(name: str) -> None:
    sql = _without_literals(POSTGRES[name])
    assert "?" not in sql, "SQLite placeholder"
    assert not re.search(r"(?<![:\w]):\w", sql), "SQLite named parameter"
    assert not re.search(r"%(?![s%(])", sql.replace("%%", "")), "a bare % (write %%)"
    assert "INDEXED BY" not in sql.upper()
    assert not re.search(r"\b(json_each|json_extract|instr|julianday|strftime)\s*\(", sql)
    assert not sql.rstrip().rstrip(";").count(";"), "more than one statement"


def test_postgres_migrations_are_numbered_like_sqlite_ones() -> None:
    found = migrations("postgres")
    assert [version for version, _, _ in found] == list(range(1, len(found) + 1))
    for version, name, script in found:
        assert re.fullmatch(r"\d{4}_\w+\.sql", name)
        assert int(name[:4]) == version
        assert script.strip()


# ---- on PostgreSQL -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(pg_cluster: Cluster) -> Cluster:
    return pg_cluster


@pytest.fixture(scope="module")
def pg_url(cluster: Cluster) -> str:
    """A database the store has migrated (opening it is what migrates)."""
    url = cluster.create_database("dialects")
    migrate(url)
    return url


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(pg_url, autocommit=True, row_factory=dict_row) as connection:
        yield connection


def test_opening_migrates_once(pg_url: str, conn: psycopg.Connection[dict[str, Any]]) -> None:
    versions = [r["version"] for r in conn.execute("SELECT version FROM wvo_schema_version")]
    assert versions == [v for v, _, _ in migrations("postgres")]
    migrate(pg_url)  # a second open finds nothing to do
    again = [r["version"] for r in conn.execute("SELECT version FROM wvo_schema_version")]
    assert again == versions
    tables = {
        r["name"]
        for r in conn.execute(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' "
            "UNION SELECT viewname FROM pg_views WHERE schemaname = 'public'"  # queue_counts
        )
    }
    assert tables >= TABLES
    buckets = {r["bucket"]: r["tasks"] for r in conn.execute("SELECT * FROM queue_counts")}
    assert buckets == dict.fromkeys(
        [
            "pending",
            "in_progress",
            "awaiting_approval",
            "needs_review",
            "blocked",
            "done",
            "failed",
            "cancelled",
            "ready",
        ],
        0,
    )


def test_tables_have_the_sqlite_columns_in_the_same_order(
    conn: psycopg.Connection[dict[str, Any]],
) -> None:
    lite = migrated()
    for table in TABLES:
        want = [row[1] for row in lite.execute(f"PRAGMA table_info({table})")]
        got = [
            r["column_name"]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "ORDER BY ordinal_position",
                (table,),
            )
        ]
        assert got == want, table


def test_text_keys_and_timestamps_compare_as_bytes(
    conn: psycopg.Connection[dict[str, Any]],
) -> None:
    """Every text column is COLLATE "C" but free text (whose order nothing reads)."""
    free_text = {
        "title",
        "description",
        "tags",
        "metadata",
        "verify_command",
        "reason",
        "summary",
        "next_steps",
        "files",
        "sandbox_run",
        "client_name",
        "value",
        "content",
        "message",
        "observation",
        "report",
        "stdout",
        "stderr",
        "scope",
        "notes",
    }
    for r in conn.execute(
        "SELECT table_name, column_name, collation_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND data_type = 'text'"
    ):
        if r["table_name"] in TABLES and r["column_name"] not in free_text:
            assert r["collation_name"] == "C", (r["table_name"], r["column_name"])


def to_dollars(sql: str) -> str:
    """psycopg placeholders as PostgreSQL's own: %s in order, %(name)s once per name."""
    names: dict[str, int] = {}
    positional = 0

    def number(match: re.Match[str]) -> str:
        nonlocal positional
        if match.group(0) == "%%":
            return "%"
        if match.group(1) is not None:
            return f"${names.setdefault(match.group(1), len(names) + 1)}"
        positional += 1
        return f"${positional}"

    return re.sub(r"%%|%\((\w+)\)s|%s", number, sql).rstrip().rstrip(";")


def sqlite_columns(name: str) -> list[str] | None:
    """The result columns SQLite answers for the query (None: it returns no rows). Run on
    an empty schema with NULLs, or zeros where NULL will not do (LIMIT NULL)."""
    sql = SQLITE[name]
    if sql.lstrip().upper().startswith(("SAVEPOINT", "ROLLBACK TO")):
        return None  # transaction control: it answers no rows
    conn = migrated()
    try:
        params = none_params(conn, sql)
        zeros = dict.fromkeys(params, 0) if isinstance(params, dict) else [0] * len(params)
        # An INSERT ... RETURNING into a child table (add_checkpoint) answers its columns
        # only once its zeros are let in: the parent row they name does not exist here.
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN")
        for values in (params, zeros):
            try:
                cursor = conn.execute(sql, values)
            except sqlite3.IntegrityError:
                continue
            return None if cursor.description is None else [d[0] for d in cursor.description]
        assert "RETURNING" not in sql.upper(), f"{name} runs with neither NULLs nor zeros"
        return None  # an INSERT of values the table refuses: it answers no rows
    finally:
        conn.close()


@pytest.mark.parametrize("name", list(POSTGRES))
def test_query_prepares_with_the_sqlite_columns(
    conn: psycopg.Connection[dict[str, Any]], name: str
) -> None:
    """Parsed, analysed and planned against the migrated schema; then its result columns
    are those SQLite answers, as str, int or float."""
    sql = to_dollars(POSTGRES[name])
    names, positional = postgres_params(POSTGRES[name])
    pgconn = conn.pgconn
    statement = b"check_" + name.encode()
    prepared = pgconn.prepare(statement, sql.encode())
    assert prepared.status == pq.ExecStatus.COMMAND_OK, prepared.error_message.decode()
    try:
        described = pgconn.describe_prepared(statement)
        assert described.status == pq.ExecStatus.COMMAND_OK
        assert described.nparams == len(names) + positional
        columns = [described.fname(i).decode() for i in range(described.nfields)]
        types = [described.ftype(i) for i in range(described.nfields)]
    finally:
        conn.execute(f"DEALLOCATE {statement.decode()}")
    bad = [c for c, t in zip(columns, types, strict=True) if t not in ALLOWED_RESULT_TYPES.values()]
    assert not bad, f"columns of another type than text, bigint, integer, double: {bad}"
    want = sqlite_columns(name)
    if want is None:
        assert columns == []
        return
    assert len(columns) == len(want)
    for got, expected in zip(columns, want, strict=True):
        if re.fullmatch(r"\w+", expected):  # an expression's name is its text: not read
            assert got == expected


# ---- the queue-count triggers, against SQLite's ----------------------------------------


def task(task_id: str, status: str, unmet: int = 0) -> dict[str, Any]:
    return {
        "id": task_id,
        "title": task_id,
        "description": "",
        "epic_id": None,
        "milestone_id": None,
        "status": status,
        "complexity": 3,
        "business_value": 5,
        "time_criticality": 5,
        "risk_reduction": 5,
        "job_size": 6,
        "due_at": None,
        "tags": "[]",
        "requires_approval": 0,
        "max_attempts": 3,
        "unmet_dependencies": unmet,
        "dependents": 0,
        "effective_time_criticality": 5.0,
        "wsjf_score": 2.5,
        "metadata": "{}",
        "verify_command": None,
        "not_before": None,
        "now": "2031-05-06T07:00:00.000Z",
    }


STAMP = "2031-05-06T08:00:00.000Z"
Step = Callable[[Any], object]
# Each step through the named queries (the same calls on both engines).
STEPS: list[Step] = [
    lambda tx: tx.many(
        "insert_task",
        [
            task("a", "pending"),
            task("b", "pending", unmet=1),
            task("c", "pending", unmet=2),
            task("d", "awaiting_approval"),
            task("e", "in_progress"),
            task("f", "done"),
            task("g", "failed"),
        ],
    ),
    lambda tx: tx.many("insert_dependency", [("b", "a"), ("c", "a"), ("c", "b")]),
    lambda tx: tx.run("set_status_plain", ("done", STAMP, "a")),
    lambda tx: tx.all("release_dependents", (STAMP, "a")),  # b ready, c waits on b
    lambda tx: tx.run("set_status_plain", ("done", STAMP, "a")),  # no change: not counted
    lambda tx: tx.run("set_unmet_dependencies", (0, STAMP, "b")),  # unchanged: not counted
    lambda tx: tx.run(
        "grant_lease",
        {
            "id": "b",
            "agent": "x",
            "token": "t",
            "lease_seconds": 60,
            "expires": STAMP,
            "now": STAMP,
            "epoch": 0,
        },
    ),
    lambda tx: tx.run("set_unmet_dependencies", (5, STAMP, "c")),
    lambda tx: tx.run("requeue_lost", (1, None, STAMP, "b")),  # back to ready
    lambda tx: tx.run(
        "set_status",
        {
            "id": "d",
            "status": "pending",
            "attempts": 0,
            "not_before": None,
            "keep_holder": 0,
            "completed": None,
            "now": STAMP,
        },
    ),
    lambda tx: tx.run("dead_letter", (3, STAMP, "e")),
    lambda tx: tx.run("set_unmet_dependencies", (0, STAMP, "c")),
]
DELETE = {"sqlite": "DELETE FROM tasks WHERE id = ?", "postgres": "DELETE FROM tasks WHERE id = %s"}


def counts_sqlite(steps: Sequence[Step], deleted: Sequence[str]) -> list[dict[str, int]]:
    conn = migrated()
    conn.row_factory = sqlite3.Row
    tx = SqliteTx(conn)
    seen = []
    for step in steps:
        step(tx)
        seen.append({r["bucket"]: r["tasks"] for r in tx.all("queue_counts")})
    for task_id in deleted:
        conn.execute(DELETE["sqlite"], (task_id,))
        seen.append({r["bucket"]: r["tasks"] for r in tx.all("queue_counts")})
    conn.close()
    return seen


def test_triggers_keep_queue_counts_as_sqlite_does(pg_migrated: Callable[[str], str]) -> None:
    url = pg_migrated("triggers")
    deleted = ["c", "d", "b", "f"]
    seen = []

    async def run() -> None:
        db = await PostgresDatabase(url).open()
        try:
            for step in STEPS:
                await db.write(step)
                seen.append(
                    await db.read(
                        lambda tx: {r["bucket"]: r["tasks"] for r in tx.all("queue_counts")}
                    )
                )
            for task_id in deleted:
                await db.write(lambda tx, t=task_id: tx.execute(DELETE["postgres"], (t,)))
                seen.append(
                    await db.read(
                        lambda tx: {r["bucket"]: r["tasks"] for r in tx.all("queue_counts")}
                    )
                )
        finally:
            await db.close()

    anyio.run(run)
    assert seen == counts_sqlite(STEPS, deleted)
    # And the counts agree with the rows themselves.
    with psycopg.connect(url, row_factory=dict_row) as conn:
        stored = {r["bucket"]: r["tasks"] for r in conn.execute("SELECT * FROM queue_counts")}
        real = {
            r["status"]: r["n"]
            for r in conn.execute("SELECT status, count(*) AS n FROM tasks GROUP BY status")
        }
        ready = conn.execute(
            "SELECT count(*) AS n FROM tasks WHERE status = 'pending' AND unmet_dependencies = 0"
        ).fetchone()
    assert ready is not None
    assert stored == {**dict.fromkeys(stored, 0), **real, "ready": ready["n"]}
    assert sum(stored.values()) - stored["ready"] == 3  # a, e, g are left


def test_a_dependency_of_a_deleted_task_goes_with_it(pg_migrated: Callable[[str], str]) -> None:
    url = pg_migrated("cascade")

    async def run() -> tuple[int, int]:
        db = await PostgresDatabase(url).open()
        try:
            await db.write(STEPS[0])
            await db.write(STEPS[1])
            await db.write(lambda tx: tx.execute(DELETE["postgres"], ("a",)))
            return await db.read(
                lambda tx: (
                    tx.value("unmet_dependencies_of", ("c",)),
                    len(tx.all("dependents_of", ("a",))),
                )
            )
        finally:
            await db.close()

    assert anyio.run(run) == (1, 0)  # c still waits on b; nothing points at a


# ---- byte order whatever the locale ----------------------------------------------------


def test_text_orders_by_bytes_in_a_database_of_another_locale(cluster: Cluster) -> None:
    """ids, statuses and timestamps order as SQLite (and Python) order them even where the
    database's own collation would sort 'B' after 'a' and ignore punctuation."""
    with psycopg.connect(cluster.url(), autocommit=True) as admin:
        icu = admin.execute(
            "SELECT 1 FROM pg_collation WHERE collprovider = 'i' AND collname = 'en-x-icu'"
        ).fetchone()
        if icu is None:
            pytest.skip("this PostgreSQL has no ICU collations")
        admin.execute(
            "CREATE DATABASE icu TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en' LOCALE 'C'"
        )
    url = cluster.url("icu")
    ids = ["b", "B", "a", "_z", "a-1", "a1", "Z", "ä", "10", "9"]
    with psycopg.connect(url) as conn:
        local = [
            r[0] for r in conn.execute("SELECT x FROM unnest(%s::text[]) AS x ORDER BY x", (ids,))
        ]
    assert local != sorted(ids), "this locale orders like bytes: the test would prove nothing"

    async def run() -> list[str]:
        db = await PostgresDatabase(url).open()
        try:
            await db.write(lambda tx: tx.many("insert_task", [task(i, "pending") for i in ids]))
            page = await db.read(
                lambda tx: tx.all(
                    "list_tasks",
                    {
                        "status": None,
                        "epic_id": None,
                        "milestone_id": None,
                        "tag": None,
                        "after": "",
                        "limit": 100,
                    },
                )
            )
            return [row["id"] for row in page]
        finally:
            await db.close()

    assert anyio.run(run) == sorted(ids)
