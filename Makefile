# The course's commands. Each one runs set-up first (seconds when already done).
.PHONY: setup grade test bench notebooks

setup:
	@bash tools/setup.sh

# Main job: regenerate release/ from source/, autograde submitted/, print grades.
grade: setup
	.venv/bin/python -m grader

# All tests (unit tests of helpers, notebook contracts, the real nbgrader pipeline); the slowest
# 25 are listed at the end, to keep the suite inside CI's time.
test: setup
	.venv/bin/python -m pytest -q --durations=25

# Benchmarks: print figures with their method (not part of the tests).
bench: setup
	.venv/bin/python -m benchmarks

# Rebuild source/*/*.ipynb from authoring/*/ (each exercise's part files, in order).
notebooks: setup
	.venv/bin/python -m tools.notebook_builder
