"""The PyTorch classifier kinds: ``lstm`` (a BiLSTM classifier folder), ``wide`` (one joined to
an n-gram model, :mod:`sentiment.kinds.wide`) and ``ensemble`` (several averaged), loaded as a
:class:`SentimentModel` that scores texts, token ids, explains and quantizes."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import Config
from ..data.lengths import STEP_ROWS, score_in_length_order
from ..text.vocab import Vocab
from .base import SCORE_MAX_TOKENS, TextModel
from .decisions import probabilities

if TYPE_CHECKING:
    import torch

    from ..nn.heads import SentimentClassifier
    from .folder import LoadOptions


class SentimentModel(TextModel):
    """A loaded PyTorch classifier with its vocabulary and preprocessing, ready to score texts.
    ``quantize="int8"``: its LSTMs with dynamic int8 weights (CPU only)."""

    capabilities = frozenset({"score_ids", "explain", "quantize", "export", "move",
                              "evaluate"})

    def __init__(self, model: SentimentClassifier, vocab: Vocab, config: Config, path: str = "",
                 quantize: str = "none", kind: str = "lstm"):
        super().__init__(vocab, config, path)
        self.kind = kind
        self.model = self.float_model = model.eval()  # explanations need float weights
        self.num_classes = getattr(model, "num_classes", 2)
        self.quantize = quantize
        if getattr(model, "pooling", None) == "mil":  # its tokens are read sentence by sentence
            self.capabilities = self.capabilities - {"export"}
            self.refusals = {**getattr(self, "refusals", {}),
                             "export": "ONNX does not split its sentences (pooling 'mil')"}
        if quantize == "int8":
            self.model = quantize_int8(self.model)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def probabilities(self, ids: Sequence[Sequence[int]], batch_size: int = 64,
                      max_tokens: int | None = SCORE_MAX_TOKENS,
                      mixed_precision: bool = True) -> np.ndarray:
        """The deep model's probabilities (:func:`score_ids`), before any wide part."""
        return score_ids(self.model, ids, batch_size, self.vocab.pad_index or 0,
                         mixed_precision=mixed_precision and self.quantize == "none",
                         max_tokens=max_tokens, step_rows=self.step_rows)

    def explain(self, text: str, steps: int = 32, max_tokens: int | None = None) -> dict:
        """Which words pushed ``text``'s label: :func:`sentiment.kinds.explain.explain`."""
        from .explain import explain

        if self.quantize != "none":  # gradients go through the float weights
            float_twin = copy.copy(self)
            float_twin.model, float_twin.quantize = self.float_model, "none"
            return explain(float_twin, text, steps, max_tokens)
        return explain(self, text, steps, max_tokens)

    def explaining_copy(self) -> SentimentModel:
        """A copy whose weights are its own, to explain beside scoring: an explanation hooks the
        embeddings of the weights it runs on."""
        twin = copy.copy(self)
        twin.model = copy.deepcopy(self.model)
        return twin

    def moved_to(self, device: torch.device) -> SentimentModel:
        """A copy of this model on ``device``, leaving this one (maybe cached and shared) where
        it is (a model from a folder is loaded for that device instead:
        :func:`sentiment.inference.predict.loaded`)."""
        moved = copy.copy(self)
        moved.model = copy.deepcopy(self.model).to(device)
        return moved

    @classmethod
    def load(cls, folder: Path, kind: str, options: LoadOptions, members=None
             ) -> SentimentModel:
        """The registry's loader of ``lstm``, ``wide`` and ``ensemble`` folders."""
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ModuleNotFoundError(
                f"{folder} is a PyTorch model and torch is not installed: pip install torch, or "
                "score the shipped model's ONNX export (model='imdb-onnx'), or export yours to "
                "ONNX where torch is (sentiment export --format onnx) and score that folder"
            ) from None
        from ..runtime.precision import resolve_device
        from .checkpoint import load_pretrained

        device = resolve_device(options.device)
        if options.quantize != "none" and device.type != "cpu":
            raise ValueError(f"quantize={options.quantize!r} runs on the CPU, not {device}")
        model, vocab, config = load_pretrained(folder, device=device)
        return cls(model, vocab, config, str(folder), options.quantize, kind)

    def __repr__(self) -> str:
        quantized = "" if self.quantize == "none" else f", quantize={self.quantize!r}"
        return f"SentimentModel(path={self.path!r}, vocab_size={len(self.vocab)}{quantized})"


MODEL = SentimentModel


def quantize_int8(model: SentimentClassifier) -> SentimentClassifier:
    """A copy of ``model`` whose LSTM/GRU/RNN layers hold dynamic int8 weights (activations
    quantized on the fly; the embedding and the float32 head unchanged). CPU only."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    if next(model.parameters()).device.type != "cpu":
        raise ValueError("int8 quantization runs on the CPU; load the model with device='cpu'")
    with warnings.catch_warnings():  # torch.ao's note that torchao will replace it one day
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated")
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated")
        return quantize_dynamic(copy.deepcopy(model), {torch.nn.LSTM, torch.nn.GRU}, torch.qint8)


def score_ids(
    model: SentimentClassifier,
    sequences: Sequence[Sequence[int]],
    batch_size: int = 64,
    pad_index: int = 0,
    max_length: int | None = None,
    mixed_precision: bool = True,
    max_tokens: int | None = None,
    autocast_to: torch.dtype | None = None,
    keep: str = "start",
    step_rows: float | None = STEP_ROWS,
) -> np.ndarray:
    """Class probabilities per id sequence, batched sorted by length, input order kept: a
    binary model's probability of its second label (*positive*) as shape ``(N,)``, a
    multi-class model's softmax as ``(N, C)`` (:func:`class_probs` makes both ``(N, C)``).

    ``mixed_precision``: run the RNN in the device's fast lower precision where it has one
    (:func:`~sentiment.runtime.precision.autocast_dtype`); the head and the probabilities stay
    float32. ``max_tokens``: a batch also ends before its padded size (rows × longest) would pass
    this, so that a few long texts do not pad many short ones. ``autocast_to``: this lower
    precision instead of the measured choice (benchmarks compare them). ``keep``: which end of a
    sequence longer than ``max_length`` is read (:func:`sentiment.data.lengths.cut`).
    ``step_rows``: how the batches are cut (:func:`~sentiment.data.lengths.score_in_length_order`).
    """
    import torch

    from ..data.batching import pad_batch
    from ..runtime.precision import autocast, autocast_dtype

    device = next(model.parameters()).device
    classes = getattr(model, "num_classes", 2)
    model.eval()

    def score_batch(indices, lengths):
        batch = pad_batch([sequences[i] for i in indices], pad_index, max_length,
                          keep=keep).to(device)
        return probabilities(model(batch).logits.float(), classes).cpu().numpy()

    amp_dtype = autocast_to or autocast_dtype(device, mixed_precision)
    with torch.inference_mode(), autocast(device, amp_dtype):
        return score_in_length_order(sequences, classes, batch_size, max_tokens, score_batch,
                                     step_rows=step_rows)
