"""Course benchmarks: figures with their method, printed as one table.

Each module exposes ``main() -> list[dict]`` with rows
``{"benchmark", "figure", "value", "unit", "method"}``; ``python -m benchmarks``
runs them (see ``benchmarks/__main__.py``). Timing targets live here, not in
tests: figures are printed, not asserted.
"""
