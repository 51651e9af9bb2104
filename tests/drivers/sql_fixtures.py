"""The fixtures a SQL driver's test module imports (`db`, `tables`, `jobs`); they need its `sql` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.drivers.sql_cases import SqlDb, SqlDriver, Tables


@pytest.fixture(scope="module", name="db")
def db_fixture(sql: SqlDriver) -> Iterator[SqlDb]:
    """A connection to the driver's server for the whole module, for setting up and checking tables."""
    db = SqlDb(sql.connect())
    yield db
    db.conn.close()


@pytest.fixture(name="tables")
def tables_fixture(db: SqlDb, sql: SqlDriver) -> Iterator[Tables]:
    """tables(columns) -> the name of a fresh table; every table made is dropped after the test."""
    tables = Tables(db, sql)
    yield tables
    tables.drop_all()


@pytest.fixture(name="jobs")
def jobs_fixture(db: SqlDb, tables: Tables) -> str:
    """The worked example of procx.md §3.4 E: (7, 'a<b', 'do it') and (8, 'c', 'more')."""
    name = tables("id INT PRIMARY KEY, name VARCHAR(20), work TEXT")
    db.execute(f"INSERT INTO {name} VALUES (7, 'a<b', 'do it'), (8, 'c', 'more')")
    return name
