"""Shared fixtures. Tests import the repository's own packages (helpers, tools)."""
from __future__ import annotations

import sys

import pytest

from helpers.paths import REPO_ROOT
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(scope="session")
def tiny_dir():
    from helpers.models import TINY_DIR, build_tiny_model, is_complete_model_dir

    if not is_complete_model_dir(TINY_DIR):
        pytest.skip("tiny model missing: run `make setup` first")
    return build_tiny_model()


@pytest.fixture
def one_matmul_model():
    """A function ``(folder, weight [K, N]) -> folder`` writing ``folder/model.onnx`` that computes
    ``Y = X @ weight`` (a constant), its MatMul named like an MLP projection so that the course's
    quantizers take it."""
    def write(folder, weight):
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        from helpers.quantization import ONNX_FILE

        k, n = weight.shape
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["X", "W"], ["Y"], name="/model/layers.0/mlp/up_proj/MatMul")], "one_matmul",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["rows", k])],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["rows", n])],
            [numpy_helper.from_array(np.asarray(weight, np.float32), "W")])
        folder.mkdir(parents=True)
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9),
                  str(folder / ONNX_FILE))
        return folder

    return write


@pytest.fixture
def clean_profile_env(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    return monkeypatch


def pytest_terminal_summary(terminalreporter):
    """Tests that leave something to look at (the browser test's screenshots) say where, pass or fail."""
    for status in ("passed", "failed"):
        for report in terminalreporter.getreports(status):
            for name, value in report.user_properties:
                if name == "look at":
                    terminalreporter.write_line(f"{report.nodeid} ({status}): {value}")
