"""The gradebook in PostgreSQL (``python -m grader --db-url postgresql://...``), on a real server.

Every test here runs against a real PostgreSQL server (``tests/postgres_server.py``: Debian's
``initdb``/``pg_ctl`` in a temporary folder, as an unprivileged user, on 127.0.0.1 only),
one server per module and a fresh database per test. Nothing is mocked.

- ``test_server_and_nbgrader_gradebook_round_trip``: nbgrader's own ``Gradebook`` creates its
  schema in a new PostgreSQL database; an assignment and a student written through one
  ``Gradebook`` are read back through a second one. The server listens on 127.0.0.1 only, and
  once its ``with`` block ends its process has exited, its port is closed and its folder is gone.
"""
from __future__ import annotations

import socket

import pytest

from grader.gradebook import _venv_bin_on_path
from tests.postgres_server import DRIVER, PostgresServer, postgres_db_url, postgres_server  # noqa: F401


@pytest.fixture(autouse=True)
def _alembic_on_path():
    # nbgrader's Gradebook runs the `alembic` command when it creates the schema.
    _venv_bin_on_path()


def _port_is_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_server_and_nbgrader_gradebook_round_trip():
    from nbgrader.api import Gradebook

    with PostgresServer() as server:
        folder, port = server.folder, server.port
        assert folder.is_dir() and _port_is_open(port) and PostgresServer.process_alive(server.pid)

        conn = server.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW listen_addresses")
                assert cur.fetchone()[0] == "127.0.0.1"
                cur.execute("SELECT inet_server_addr()::text")
                assert cur.fetchone()[0] == "127.0.0.1/32"
        finally:
            conn.close()

        name = server.create_database()
        assert server.url(name) == f"postgresql://course@127.0.0.1:{port}/{name}"
        url = server.url(name, driver=DRIVER)

        gradebook = Gradebook(url)
        try:
            gradebook.add_assignment("ps1", duedate="2026-01-15 17:00:00")
            gradebook.add_student("alice", first_name="Alice", last_name="Liddell", email="alice@example.org")
        finally:
            gradebook.close()

        with Gradebook(url) as reopened:
            assert [a.name for a in reopened.assignments] == ["ps1"]
            assert str(reopened.find_assignment("ps1").duedate) == "2026-01-15 17:00:00"
            student = reopened.find_student("alice")
            assert (student.first_name, student.last_name, student.email) == ("Alice", "Liddell", "alice@example.org")
            assert reopened.engine.dialect.name == "postgresql"

    assert server.folder is None and not folder.exists()
    assert not PostgresServer.process_alive(server.pid)
    assert not _port_is_open(port)
