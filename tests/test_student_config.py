"""A student's Jupyter finds the course's exchange through tools.student_config."""
from __future__ import annotations

from pathlib import Path

from traitlets.config.loader import PyFileConfigLoader

from helpers.paths import REPO_ROOT
from tools import student_config


def _load(folder: Path):
    return PyFileConfigLoader("nbgrader_config.py", path=str(folder)).load_config()


def test_course_settings_follow_the_course_config(monkeypatch):
    monkeypatch.delenv("COURSE_EXCHANGE_DIR", raising=False)
    course_id, exchange = student_config.course_settings(REPO_ROOT)
    assert course_id == "llm-generation-perf"
    assert Path(exchange) == REPO_ROOT / "exchange"
    monkeypatch.setenv("COURSE_EXCHANGE_DIR", "/srv/nbgrader/exchange")
    assert student_config.course_settings(REPO_ROOT)[1] == "/srv/nbgrader/exchange"


def test_written_config_points_at_the_course_exchange(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_EXCHANGE_DIR", raising=False)
    target = student_config.write_student_config(tmp_path / "work", REPO_ROOT)
    config = _load(target.parent)
    assert config.CourseDirectory.course_id == "llm-generation-perf"
    assert Path(config.Exchange.root) == REPO_ROOT / "exchange"
    # Validate's and the student's own run outputs are not uploaded with the notebook.
    assert "artifacts" in config.CourseDirectory.ignore
    # A second run replaces its own file.
    student_config.write_student_config(tmp_path / "work", REPO_ROOT)


def test_a_config_the_student_wrote_is_never_replaced(tmp_path, capsys):
    folder = tmp_path / "work"
    folder.mkdir()
    mine = "c = get_config()\nc.Exchange.root = '/elsewhere'\n"
    (folder / "nbgrader_config.py").write_text(mine)
    assert student_config.main([str(folder), "--course-root", str(REPO_ROOT)]) == 2
    assert (folder / "nbgrader_config.py").read_text() == mine
    message = capsys.readouterr().err
    assert "was not written by tools.student_config" in message
    assert "c.Exchange.root" in message    # the lines to add by hand
