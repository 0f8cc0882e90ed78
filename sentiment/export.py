"""Exporting a trained classifier to ONNX (``sentiment export --format onnx``), for ONNX Runtime
and installs without torch (:mod:`sentiment.onnx_model`).

The graph takes padded ids and true lengths and returns probabilities, so the scorer on the
other side is a tokenizer, a vocabulary lookup and one ``session.run``. Each LSTM becomes ONNX's
fused ``LSTM`` operator; the backward direction's reversal within each text's length is exported
as it runs in PyTorch (gathers), so padding changes nothing there either. ``quantize="int8"``
stores the LSTM and linear weights as int8 (ONNX Runtime's dynamic quantization).
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .batching import Batch, pad_batch
from .checkpoint import load_pretrained
from .config import ONNX_FILE
from .decisions import probabilities
from .onnx_model import EXPORT_FILE, OnnxModel
from .predict import QUANTIZE, score_ids

OPSET = 17
# the largest difference between the exported graph's probabilities and PyTorch's (float32) that
# an export accepts: float32 kernels differ in summation order by ~1e-6 over hundreds of steps
TOLERANCE = 1e-4


class _Probabilities(nn.Module):
    """``(ids, lengths) -> probabilities``: the classifier as the exported graph sees it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.classes = getattr(model, "num_classes", 2)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return probabilities(self.model(Batch(ids, lengths)).logits.float(), self.classes)


def _sample_ids(vocab_size: int, lengths: list[int], seed: int = 0) -> list[list[int]]:
    generator = np.random.default_rng(seed)
    return [generator.integers(2, vocab_size, size=n).tolist() for n in lengths]


def export_onnx(model_dir: str | Path, output: str | Path, quantize: str = "none",
                check_ids: list[list[int]] | None = None) -> dict:
    """Write ``model_dir`` (a classifier or an ensemble of them) to ``output`` as ONNX, check
    the exported graph against the PyTorch model on ``check_ids`` (default: random texts of
    1-400 tokens) and return what ``export.json`` records. A float32 export that differs by
    more than :data:`TOLERANCE` is an error; an int8 one records its difference."""
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {QUANTIZE}, not {quantize!r}")
    model_dir, output = Path(model_dir), Path(output)
    if output.resolve() == model_dir.resolve():
        raise ValueError("export to a new folder, not over the model itself")
    model, vocab, config = load_pretrained(model_dir, device="cpu")
    if config.task != "sentiment":
        raise ValueError(f"{model_dir} is a {config.task!r} model; only classifiers export")
    graph = _Probabilities(model.float().eval())
    example = pad_batch(_sample_ids(len(vocab), [7, 5, 3]), vocab.pad_index or 0)
    ids, lengths = example.inputs, example.lengths  # padded: the exported path handles padding
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output) as tmp:
        float_path = Path(tmp) / ONNX_FILE
        with warnings.catch_warnings():  # the tracer's notes on Python-side shape checks
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph, (ids, lengths), str(float_path), input_names=["ids", "lengths"],
                output_names=["probabilities"], opset_version=OPSET, dynamo=False,
                dynamic_axes={"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"},
                              "probabilities": {0: "batch"}})
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(float_path, Path(tmp) / "int8.onnx", weight_type=QuantType.QInt8)
            (Path(tmp) / "int8.onnx").replace(output / ONNX_FILE)
        else:
            float_path.replace(output / ONNX_FILE)
    # the model's preprocessing (an ensemble's: its members', checked to be one)
    (output / "config.json").write_text(json.dumps(config.to_dict(), indent=2), encoding="utf-8")
    vocab.save(output / "vocab.json")
    check_ids = check_ids or _sample_ids(len(vocab), [1, 2, 17, 60, 133, 250, 400], seed=1)
    expected = score_ids(model, check_ids, 64, vocab.pad_index or 0, mixed_precision=False)
    exported = OnnxModel(output)
    difference = float(np.abs(exported.probabilities(check_ids) - expected).max())
    record = {"format": "onnx", "opset": OPSET, "quantize": quantize,
              "source": str(model_dir.resolve()), "torch": torch.__version__,
              "checked_texts": len(check_ids), "max_abs_difference": difference,
              "tolerance": TOLERANCE if quantize == "none" else None}
    if quantize == "none" and difference > TOLERANCE:
        raise RuntimeError(f"the exported model differs from {model_dir} by {difference:.2e} "
                           f"(more than {TOLERANCE:g}); {output} is not a faithful export")
    (output / EXPORT_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record
