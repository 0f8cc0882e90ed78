"""A classifier exported to ONNX (``sentiment export --format onnx``), scored with ONNX Runtime.

Nothing here imports torch: an install with ``onnxruntime`` and without torch scores such a
folder through ``predict``, ``sentiment predict`` and ``sentiment serve`` (docs/inference.md).
The folder is the model folder's ``config.json`` and ``vocab.json`` beside ``model.onnx`` and
``export.json`` (what was exported, how, and how closely it matched)::

    model.onnx   ids (B, T) int64, lengths (B,) int64  ->  probabilities (B,) or (B, C)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import ONNX_FILE
from ..data.lengths import score_in_length_order
from ..text.vocab import Vocab
from .base import TextModel
from .folder import read_config

if TYPE_CHECKING:
    from .folder import LoadOptions

EXPORT_FILE = "export.json"
# a scoring batch's token budget (rows x longest) when the caller names none: ONNX Runtime's
# int8 LSTM is faster in smaller batches than PyTorch's budget (BENCHMARKS.md, "ONNX Runtime:
# one single-threaded run per core")
ONNX_MAX_TOKENS = 4_096


def is_onnx(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding an exported ONNX model."""
    return (Path(path) / ONNX_FILE).is_file()


def inference_session(path: str | Path, threads: int | None = None,
                      config: dict[str, str] | None = None):
    """An ONNX Runtime CPU session for ``path`` on ``threads`` threads (default: the cores
    this process may use), with a clear message where onnxruntime is missing. ``config``:
    session configuration entries (``{"session.set_denormal_as_zero": "1"}``, say)."""
    try:
        import onnxruntime
    except ImportError:
        raise ModuleNotFoundError(
            f"{path} is an ONNX model and onnxruntime is not installed: "
            'pip install "sentiment-lstm[onnx]" (or pip install onnxruntime)') from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initializers are noise here
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxModel(TextModel):
    """An exported classifier, its preprocessing the PyTorch model's (:class:`TextModel`)."""

    kind = "onnx"
    device = "cpu"
    default_max_tokens = ONNX_MAX_TOKENS
    refusals = {"explain": "explanations need the PyTorch model it was exported from "
                           "(an ONNX export)",
                "quantize": "an ONNX export is int8 in its graph or not at all: quantize it "
                            "when exporting (sentiment export --format onnx --quantize int8)"}

    def __init__(self, path: str | Path, threads: int | None = None):
        path = Path(path)
        for name in (ONNX_FILE, "config.json", "vocab.json"):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path} is not an exported model: {name} is missing")
        super().__init__(Vocab.load(path / "vocab.json"), read_config(path), str(path))
        export = path / EXPORT_FILE
        self.export = json.loads(export.read_text(encoding="utf-8")) if export.is_file() else {}
        # one single-threaded run per core, each on its own batch: ONNX Runtime's LSTM keeps
        # two cores busier that way than one run on two intra-op threads (BENCHMARKS.md)
        self.threads = threads or len(os.sched_getaffinity(0))
        self.session = inference_session(path / ONNX_FILE, threads=1)

    def probabilities(self, ids: Sequence[Sequence[int]], batch_size: int = 64,
                      max_tokens: int | None = ONNX_MAX_TOKENS,
                      mixed_precision: bool = True) -> np.ndarray:
        """As :func:`sentiment.kinds.lstm.score_ids`: ``(N,)`` or ``(N, C)``, input order kept
        (a wide-and-deep export's deep part alone: :meth:`joined` adds the wide one)."""
        pad = self.vocab.pad_index or 0

        def score_batch(indices, lengths):  # padded as sentiment.data.batching.pad_batch pads
            batch_lengths = np.asarray([lengths[i] for i in indices], dtype=np.int64)
            inputs = np.full((len(indices), int(batch_lengths.max())), pad, dtype=np.int64)
            for row, i in enumerate(indices):
                inputs[row, : len(ids[i])] = ids[i]
            return self.session.run(None, {"ids": inputs, "lengths": batch_lengths})[0]

        return score_in_length_order(ids, self.num_classes, batch_size, max_tokens, score_batch,
                                     workers=self.threads, step_rows=self.step_rows)

    @classmethod
    def load(cls, folder: Path, kind: str, options: LoadOptions, members=None) -> OnnxModel:
        """The registry's loader of ``onnx`` folders: scored on the CPU, int8 only as
        exported."""
        if options.device not in ("cpu", "auto"):
            raise ValueError(f"{folder} is an ONNX model, scored on the CPU; device "
                             f"{options.device!r} is for PyTorch models")
        return cls(folder, options.threads)

    def __repr__(self) -> str:
        return f"OnnxModel(path={self.path!r}, vocab_size={len(self.vocab)})"


MODEL = OnnxModel
