"""What a submission may hand in (grader/handin.py): the rule on a folder, without grading.

The real pipeline's side (a refused module cannot be imported by the graded notebook; no door
lets it reach the kernel) is in tests/test_sandbox_tamper.py and tests/test_every_door.py.
"""
from __future__ import annotations

from grader import handin


def _write(folder, *names):
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")


def test_only_notebooks_course_files_declared_files_and_nbgraders_own_are_accepted(tmp_path):
    course, submission = tmp_path / "course", tmp_path / "submission"
    _write(course / "source" / "ex", "ex.ipynb", "data/table.csv")
    _write(submission, "ex.ipynb", "timestamp.txt", "submission_secret.txt", "data/table.csv", "notes.md",
           "speedups.py", "artifacts/results.csv", "__pycache__/speedups.cpython-311.pyc", "answers/a.txt")
    assert handin.refused_files(submission, course, "ex") == \
        ["answers/a.txt", "artifacts/results.csv", "notes.md", "speedups.py"]
    assert handin.refused_files(submission, course, "ex", declared=["answers/*.txt", "notes.md"]) == \
        ["artifacts/results.csv", "speedups.py"]


def test_removal_touches_only_the_graded_copy_and_leaves_no_empty_folder(tmp_path):
    course, graded = tmp_path / "course", tmp_path / "graded"
    _write(course / "source" / "ex", "ex.ipynb")
    _write(graded, "ex.ipynb", "timestamp.txt", "deep/er/hack.py")
    assert handin.remove_refused(graded, course, "ex") == ["deep/er/hack.py"]
    assert sorted(p.name for p in graded.rglob("*")) == ["ex.ipynb", "timestamp.txt"]
    assert [handin.is_code(n) for n in ("hack.py", "lib.so", "x.pth", "table.csv")] == [True, True, True, False]
