"""The course's own answer to Exercise 1's Part B1: dynamic and static INT8 with Optimum's
``ORTQuantizer``, for the benchmarks and the tests.

It lives here, not in ``helpers``, because writing it is the lesson of Part B1: the student's
library gives the plumbing around it (``helpers.quantization``: export, layer groups,
calibration rows, sessions), and the student drives the quantizer. Nothing a graded notebook
imports can reach this module (``benchmarks`` is not installed in the course's environment).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from helpers.quantization import (PROJECTION_GROUPS, _copy_side_files, _quiet, _require_onnx, _staging,
                                  cpu_instruction_set, matmul_groups, nodes_outside)


def cpu_quantization_config(is_static: bool, per_channel: bool = True, nodes_to_exclude=None, *,
                            nodes_to_quantize=None, operators_to_quantize=("MatMul",),
                            instruction_set: str | None = None):
    """An Optimum ``QuantizationConfig`` for this CPU (see ``cpu_instruction_set``).

    Only ``MatMul`` nodes are quantized by default. Optimum's own default
    (``operators_to_quantize=None``) also quantizes other operators, among them
    the embedding ``Gather``, with one scale for the whole table; in the
    export the output layer reuses that table, so every logit then comes from
    coarsely rounded weights, whatever MatMuls were excluded.

    Weights int8 symmetric, activations uint8. With AVX-512 VNNI (or on arm64)
    the full 8-bit range is used. On AVX2/AVX-512 without VNNI, ONNX Runtime's
    u8 x s8 kernel can saturate its 16-bit intermediate sums, so the range is
    reduced to 7 bits there (``reduce_range=True``), as the ONNX Runtime
    documentation advises.
    ``nodes_to_exclude`` / ``nodes_to_quantize``: MatMul node names, e.g. from
    ``matmul_groups``. ``is_static``: static (calibrated) or dynamic ranges.
    """
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    chosen = instruction_set or cpu_instruction_set()
    common = dict(
        is_static=bool(is_static), per_channel=bool(per_channel),
        nodes_to_exclude=list(nodes_to_exclude or []), nodes_to_quantize=list(nodes_to_quantize or []),
        operators_to_quantize=list(operators_to_quantize) if operators_to_quantize else None,
    )
    if chosen == "avx512_vnni":
        return AutoQuantizationConfig.avx512_vnni(**common)
    if chosen == "arm64":
        return AutoQuantizationConfig.arm64(**common)
    if chosen == "avx512":
        return AutoQuantizationConfig.avx512(reduce_range=True, **common)
    if chosen == "avx2":
        return AutoQuantizationConfig.avx2(reduce_range=True, **common)
    raise ValueError(f"instruction_set {instruction_set!r} is not supported; "
                     "accepted values: avx512_vnni, avx512, avx2, arm64 (or None to detect)")


def _quantize_with_optimum(onnx_dir: Path, save_dir: Path, config, ranges=None) -> Path:
    from optimum.onnxruntime import ORTQuantizer

    onnx_dir, save_dir = Path(onnx_dir), Path(save_dir)
    source = _require_onnx(onnx_dir)
    with _quiet(), _staging(save_dir) as staged:
        quantizer = ORTQuantizer.from_pretrained(onnx_dir, file_name=source.name)
        quantizer.quantize(quantization_config=config, save_dir=staged, calibration_tensors_range=ranges)
        _copy_side_files(onnx_dir, staged)
    return save_dir


def quantize_dynamic(onnx_dir: Path, save_dir: Path, *, groups=None, per_channel: bool = True,
                     operators_to_quantize=("MatMul",), instruction_set: str | None = None) -> Path:
    """Dynamic INT8 of the MatMuls in ``groups`` (default: all of them) into ``save_dir``.

    Writes ``model_quantized.onnx`` (load it with ``load_ort(save_dir, QUANTIZED_FILE)``)
    plus config and tokenizer. ``groups``: names from ``GROUPS``, e.g.
    ``PROJECTION_GROUPS`` for the linear projections only. ``operators_to_quantize``:
    see ``cpu_quantization_config`` (None: Optimum's defaults). Returns ``save_dir``.
    """
    exclude = None
    if groups is not None:
        exclude = nodes_outside(matmul_groups(_require_onnx(onnx_dir)), list(groups))
    config = cpu_quantization_config(False, per_channel, exclude, operators_to_quantize=operators_to_quantize,
                                     instruction_set=instruction_set)
    return _quantize_with_optimum(onnx_dir, save_dir, config)


def quantize_static(onnx_dir: Path, save_dir: Path, dataset, *, groups=PROJECTION_GROUPS,
                    per_channel: bool = True, operators_to_quantize=("MatMul",),
                    instruction_set: str | None = None) -> Path:
    """Static INT8 (min/max calibration on ``dataset``) of the MatMuls in ``groups`` into ``save_dir``.

    ``dataset``: from ``calibration_dataset``. ``groups``: default the linear
    projections only; ``None`` quantizes every MatMul. Writes
    ``model_quantized.onnx`` (QDQ format) plus config and tokenizer; returns ``save_dir``.
    """
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoCalibrationConfig

    onnx_dir = Path(onnx_dir)
    source = _require_onnx(onnx_dir)
    exclude = None if groups is None else nodes_outside(matmul_groups(source), list(groups))
    config = cpu_quantization_config(True, per_channel, exclude, operators_to_quantize=operators_to_quantize,
                                     instruction_set=instruction_set)
    with _quiet(), tempfile.TemporaryDirectory(prefix="calibration-") as work:
        quantizer = ORTQuantizer.from_pretrained(onnx_dir, file_name=source.name)
        calibration = AutoCalibrationConfig.minmax(dataset)
        ranges = quantizer.fit(
            dataset=dataset, calibration_config=calibration,
            onnx_augmented_model_name=Path(work) / "augmented_model.onnx",
            operators_to_quantize=config.operators_to_quantize,
        )
    return _quantize_with_optimum(onnx_dir, save_dir, config, ranges=ranges)
