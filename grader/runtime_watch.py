"""What ran, seen from outside the student's cells: hooks and patches present in the kernel.

The tamper review reads the text of a submission; code whose names are built when it runs
(strings decoded, the shell reached through an ordinary attribute) reads as nothing. So after
every code cell the grader's executor asks the kernel, in a request of its own (a Jupyter
``user_expressions`` entry: it goes through no input transformer and stands in no cell), for a
fingerprint of what can rewrite, skip or answer for later cells:

- IPython's input and AST transformers and its ``pre_execute``/``pre_run_cell`` callbacks,
- a trace or profile function (``sys`` and ``threading``), a torch function mode,
- the identity of the functions tests rely on (builtins, ``math``, ``time``, ``torch``, ``helpers``).

The fingerprint comes back as plain data and is compared *here*, outside the kernel: a change
after a cell the student wrote (or during a test, which runs the student's functions) is a
finding; a change after the course's own cells is the new baseline. Findings never change a
score: they hold the grade for a person to read (``GradeRow.held_for_review``).

This is detection, not defence. The kernel answers the question, and code that already runs in
it can answer falsely (by replacing how IPython evaluates the request); the verdict of a test
that runs in the same kernel is still the kernel's (course/grading_security.md says what that
leaves open).
"""
from __future__ import annotations

import ast

# Functions whose replacement changes what a test can trust, by module.
WATCHED = {
    "builtins": ("abs", "all", "any", "float", "int", "isinstance", "len", "max", "min", "print", "round",
                 "sum", "type", "getattr", "setattr", "open", "compile", "exec", "eval", "__import__"),
    "math": ("isclose", "exp", "log", "isfinite"),
    "time": ("perf_counter", "perf_counter_ns", "time", "monotonic", "sleep"),
    "torch": ("allclose", "isclose", "equal", "exp", "log", "tensor", "no_grad", "inference_mode",
              "is_grad_enabled", "is_inference_mode_enabled"),
    "torch.nn.functional": ("cross_entropy", "log_softmax", "softmax", "nll_loss"),
    "torch.testing": ("assert_close",),
    "helpers": ("summarize", "synchronize", "repeat", "Timer", "load_causal_lm", "measure_memory_bandwidth"),
}
LABELS = ("input transformers", "post-input transformers", "AST transformers", "pre_execute callbacks",
          "pre_run_cell callbacks", "a trace function", "a profile function", "a thread trace function",
          "torch function modes")

# One expression, evaluated by IPython in the user's namespace (it binds nothing there). Modules
# come from sys.modules and names from their __dict__, so asking imports nothing (helpers loads
# its parts lazily): a module the notebook has not imported is not watched yet.
EXPRESSION = (
    "(lambda sys, ip: ("
    "len(ip.input_transformers_cleanup), len(ip.input_transformers_post), len(ip.ast_transformers), "
    "len(ip.events.callbacks.get('pre_execute', ())), len(ip.events.callbacks.get('pre_run_cell', ())), "
    "sys.gettrace() is not None, sys.getprofile() is not None, "
    "getattr(sys.modules.get('threading'), 'gettrace', lambda: None)() is not None, "
    "sys.modules['torch']._C._len_torch_function_stack() if 'torch' in sys.modules else 0, "
    "dict({'': id(ip)}, **{m: {n: id(vars(sys.modules[m]).get(n, ip)) for n in names} "
    "for m, names in %r.items() if m in sys.modules})"
    "))(__import__('sys'), get_ipython())" % (WATCHED,))


def parse(reply_content: dict) -> tuple | None:
    """The fingerprint from an execute reply's content, or None if the kernel did not give one."""
    answer = (reply_content or {}).get("user_expressions", {}).get("fingerprint", {})
    if answer.get("status") != "ok":
        return None
    try:
        value = ast.literal_eval(answer.get("data", {}).get("text/plain", ""))
    except (ValueError, SyntaxError):
        return None
    if not (isinstance(value, tuple) and len(value) == len(LABELS) + 1 and isinstance(value[-1], dict)):
        return None
    return value


def changes(before: tuple, after: tuple) -> list[str]:
    """What ``after`` has that ``before`` did not: hooks added, watched functions replaced."""
    found = []
    for label, old, new in zip(LABELS, before, after):
        if isinstance(new, bool):
            if new and not old:
                found.append(f"installed {label}")
        elif new > old:
            found.append(f"added {label}")
    old_ids, new_ids = before[-1], after[-1]
    unbound = old_ids.get("", 0)      # a name not yet in its module (helpers binds on first use)
    for module, names in new_ids.items():
        if not module:
            continue
        for name, identity in names.items():
            old = old_ids.get(module, {}).get(name, unbound)
            if old != unbound and old != identity:
                found.append(f"replaced {module}.{name}")
    return found
