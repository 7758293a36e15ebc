"""Tamper review: a grader-side reading of the student's own code.

Run by the grader outside the sandbox, on the submitted notebook, so nothing the submission
does at run time can hide it (``tamper_review``). Findings never change the score: they ask
for a person to look.
"""
from __future__ import annotations

import ast
import re


SUSPECT_NAMES = {
    "builtins": "touches builtins", "__builtins__": "touches builtins", "ctypes": "uses ctypes",
    "gc": "uses gc (can reach the tests' objects)", "__code__": "rewrites function code",
    "__globals__": "reaches function globals", "settrace": "installs a tracer",
    "setprofile": "installs a profiler hook", "__import__": "imports dynamically",
    "exec": "runs generated code", "eval": "evaluates generated code", "compile": "compiles code",
    "mock": "uses unittest.mock", "sys.modules": "edits sys.modules", "reload": "reloads modules",
    "get_ipython": "reaches the IPython shell (can rewrite or skip later cells)",
    "input_transformers_cleanup": "adds an IPython input transformer",
    "input_transformers_post": "adds an IPython input transformer",
    "ast_transformers": "adds an IPython AST transformer", "excepthook": "replaces the exception hook",
    "signal.signal": "changes signal handling",
    "globals": "reaches module globals", "_getframe": "inspects the caller's frames",
    "currentframe": "inspects the caller's frames", "f_back": "inspects the caller's frames",
    "TorchFunctionMode": "installs a torch function mode", "TorchDispatchMode": "installs a torch dispatch mode",
    "__torch_function__": "overrides torch functions for its objects",
    "__torch_dispatch__": "overrides torch operators for its objects",
}
# IPython's input and output history in the user namespace: the code of every cell run so far,
# hidden tests included, which a later cell could print into its output (and so into feedback).
HISTORY_NAME = re.compile(r"In|Out|_ih|_oh|_i{1,3}|_i\d+")
# Strings whose mere presence in a student's cell asks for a look.
SUSPECT_STRINGS = {"NBGRADER_EXECUTION": "checks whether it is being graded"}


def _dotted(node) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


# Builtins that are suspect when called by their bare name (``model.eval()`` is not ``eval``).
BARE_ONLY = {"exec", "eval", "compile", "globals", "__import__"}


def reference_lines(*notebooks) -> set[str]:
    """Every stripped code line of the given notebooks (the source with solutions, the release)."""
    lines = set()
    for notebook in notebooks:
        for cell in notebook.cells:
            if cell.cell_type == "code":
                lines |= {line.strip() for line in cell.source.splitlines() if line.strip()}
    return lines


def tamper_review(notebook, known_lines: set[str] = frozenset()) -> list[str]:
    """Lines of the student's own cells that patch modules or reach into the interpreter.

    Run by the grader outside the sandbox on the submitted notebook, so nothing the
    submission does at run time can hide it. Locked and test cells are skipped (the
    gradebook restores them), and so are lines in ``known_lines`` (see ``reference_lines``):
    code the course itself provides is not the student's. Findings do not change the
    score: they ask for a review.
    """
    findings = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("locked") or meta.get("grade"):
            continue
        label = meta.get("grade_id") or f"cell {index}"
        source = _without_magics(cell.source)
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        lines = source.splitlines()

        cell_findings = []

        def note(node, what):
            lineno = getattr(node, "lineno", 0)
            if 0 < lineno <= len(lines) and lines[lineno - 1].strip() in known_lines:
                return
            cell_findings.append((lineno, f"{label} line {lineno or '?'}: {what}"))

        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported |= {a.asname or a.name for a in node.names}
        imported |= {"math", "time", "torch", "numpy", "np", "sys", "os", "helpers", "builtins", "random"}
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, (ast.Assign, ast.Delete)):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            for target in targets:
                name = _dotted(target.value if isinstance(target, ast.Subscript) else target)
                if "." in name and name.split(".")[0] in imported:
                    note(node, f"assigns {name}")
            if isinstance(node, ast.Call):
                func = _dotted(node.func)
                if func in ("setattr", "delattr") and node.args and _dotted(node.args[0]).split(".")[0] in imported:
                    note(node, f"{func} on {_dotted(node.args[0])}")
            name = _dotted(node) if isinstance(node, (ast.Name, ast.Attribute)) else ""
            if isinstance(node, ast.alias):
                name = node.name
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = node.name
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                for text, what in SUSPECT_STRINGS.items():
                    if text in node.value:
                        note(node, what)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and HISTORY_NAME.fullmatch(node.id):
                note(node, "reads IPython's input history (the code of earlier cells, tests included)")
            if not name:
                continue
            for suspect, what in SUSPECT_NAMES.items():
                if suspect in BARE_ONLY:
                    hit = name in (suspect, f"builtins.{suspect}", f"__builtins__.{suspect}")
                else:
                    hit = name == suspect or name.endswith("." + suspect) or name.startswith(suspect + ".")
                if hit:
                    note(node, what)
        findings += [text for _, text in sorted(cell_findings, key=lambda item: item[0])]
    unique = []
    for finding in findings:
        if finding not in unique:
            unique.append(finding)
    return unique


def _without_magics(source: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
