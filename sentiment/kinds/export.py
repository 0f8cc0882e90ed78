"""Exporting a trained classifier to ONNX (``sentiment export --format onnx``), for ONNX Runtime
and installs without torch (:mod:`sentiment.kinds.onnx`).

The graph takes padded ids and true lengths and returns probabilities, so the scorer on the
other side is a tokenizer, a vocabulary lookup and one ``session.run``. Each direction of each
LSTM layer becomes ONNX's fused ``LSTM`` operator with the texts' lengths as its
``sequence_lens`` (a backward one with ``direction="reverse"``), so each text is read to its own
length and padding changes nothing; GRU and RNN cores export as PyTorch runs them (reversals
within each length as gathers). ``quantize="int8"``
stores the LSTM and linear weights as int8 (ONNX Runtime's dynamic quantization).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import ONNX_FILE
from ..data.batching import Batch, pad_batch
from ..jsonio import write_json
from .checkpoint import load_pretrained, read_limits, reading
from .decisions import probabilities
from .folder import write_model_file
from .lstm import score_ids
from .onnx import EXPORT_FILE, OnnxModel
from .registry import QUANTIZE, SHIPPED_ROOT
from .wide import copy_wide

OPSET = 17
# the largest difference between the exported graph's probabilities and PyTorch's (float32) that
# an export accepts: float32 kernels differ in summation order by ~1e-6 over hundreds of steps
TOLERANCE = 1e-4


def _onnx_gates(weight: torch.Tensor) -> torch.Tensor:
    """PyTorch's LSTM gate blocks (input, forget, cell, output) in ONNX's order (input, output,
    forget, cell), along the first dimension."""
    i, f, c, o = weight.chunk(4, 0)
    return torch.cat([i, o, f, c], 0)


def _torch_gates(weight: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`_onnx_gates`."""
    i, o, f, c = weight.chunk(4, 0)
    return torch.cat([i, f, c, o], 0)


class _OnnxLstm(torch.autograd.Function):
    """One direction of one LSTM layer over time-major ``x`` (T, B, I) with true ``lengths``:
    PyTorch computes it as :class:`~sentiment.nn.core.RNNCore` does (a backward direction reversed
    within each length), the exported graph is ONNX's ``LSTM`` with ``sequence_lens`` (and
    ``direction="reverse"``), which reads each text to its own length and needs no gathers.
    Returns the outputs (T, B, H), zero past each length, and the final state (B, H): the last
    valid step read forward, the first read backward."""

    @staticmethod
    def forward(ctx, x, lengths, w, r, b, hidden_size, reverse):
        from ..nn.core import reverse_within_lengths, valid_mask

        inputs = x.transpose(0, 1)  # (B, T, I)
        if reverse:
            inputs = reverse_within_lengths(inputs, lengths)
        zeros = inputs.new_zeros(1, inputs.size(0), hidden_size)
        params = [_torch_gates(w[0]), _torch_gates(r[0]), *map(_torch_gates, b[0].chunk(2))]
        out = torch.lstm(inputs, (zeros, zeros), params, True, 1, 0.0, False, False, True)[0]
        if reverse:
            out = reverse_within_lengths(out, lengths)
        out = out * valid_mask(lengths, out.size(0), out.size(1), out.device).unsqueeze(-1)
        rows = torch.arange(out.size(0))
        final = out[:, 0] if reverse else out[rows, lengths - 1]
        return out.transpose(0, 1), final

    @staticmethod
    def symbolic(g, x, lengths, w, r, b, hidden_size, reverse):
        sequence_lens = g.op("Cast", lengths, to_i=6)  # int32, as ONNX's LSTM takes them
        y, y_h, _ = g.op("LSTM", x, w, r, b, sequence_lens, hidden_size_i=hidden_size,
                         direction_s="reverse" if reverse else "forward", outputs=3)
        one, zero = (g.op("Constant", value_t=torch.tensor([axis])) for axis in (1, 0))
        return g.op("Squeeze", y, one), g.op("Squeeze", y_h, zero)


class _OnnxCore(nn.Module):
    """An LSTM :class:`~sentiment.nn.core.RNNCore` in eval mode as the exported graph runs it:
    time-major from the embedding on (one transpose in, one out), each direction ONNX's fused
    ``LSTM`` with ``sequence_lens``. The same outputs, final states and masking as the core's
    exact mode; before this the backward directions were reversals (``GatherElements``) around
    each LSTM and a transpose on either side of every one, 28% of ONNX Runtime's time."""

    def __init__(self, core: nn.Module):
        super().__init__()
        self.core, config = core, core.config
        self.weights = []
        for index, rnn in enumerate(core.rnns):
            w = _onnx_gates(rnn.weight_ih_l0.detach()).unsqueeze(0)  # (1, 4H, I)
            r = _onnx_gates(rnn.weight_hh_l0.detach()).unsqueeze(0)  # (1, 4H, H)
            b = torch.cat([_onnx_gates(rnn.bias_ih_l0.detach()),
                           _onnx_gates(rnn.bias_hh_l0.detach())]).unsqueeze(0)  # (1, 8H)
            for name, value in (("w", w), ("r", r), ("b", b)):
                self.register_buffer(f"{name}{index}", value)
            self.weights.append((f"w{index}", f"r{index}", f"b{index}"))
        self.directions, self.hidden = config.num_directions, config.hidden_dim

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor, state=None):
        from ..nn.core import CoreOutput

        config = self.core.config
        x = self.core.embed(inputs).transpose(0, 1)  # (T, B, E)
        per_direction = [x] * self.directions  # the separate layout's own stacks
        for layer in range(config.num_layers):
            outputs, finals = [], []
            for direction in range(self.directions):
                index = layer * self.directions + direction
                w, r, b = (getattr(self, name) for name in self.weights[index])
                reverse = direction == 1 or config.reverse
                layer_input = per_direction[direction] if config.separate else x
                out, final = _OnnxLstm.apply(layer_input, lengths, w, r, b, self.hidden, reverse)
                outputs.append(out)
                finals.append(final)
            per_direction = outputs
            x = torch.cat(outputs, dim=-1) if self.directions > 1 else outputs[0]
        final = torch.cat(finals, dim=-1) if self.directions > 1 else finals[0]
        return CoreOutput(x.transpose(0, 1), final, [])


def _exportable(model: nn.Module) -> nn.Module:
    """``model`` with each LSTM core swapped for :class:`_OnnxCore` (a shallow copy; the
    model's own modules are shared, not changed). GRU and RNN cores export as they run."""
    import copy

    from ..nn.heads import EnsembleClassifier

    ensemble = isinstance(model, EnsembleClassifier)
    if not ensemble and model.core.config.rnn_type != "lstm":
        return model
    clone = copy.copy(model)
    clone._modules = dict(model._modules)  # the copy's own table of submodules
    if ensemble:
        clone.members = nn.ModuleList([_exportable(member) for member in model.members])
    else:
        clone.core = _OnnxCore(model.core)
    return clone


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


@contextlib.contextmanager
def _quiet_root_warnings(*prefixes: str):
    """Drop the root logger's records that start with one of ``prefixes`` while inside:
    onnxruntime's quantizer logs advice and notes on the root logger (``WARNING:root:Please
    consider to run pre-processing before quantization``, ``INFO root: Quantization parameters
    for tensor ... not specified``) that a user of ``sentiment export`` cannot act on."""
    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(prefixes)

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def source_name(model_dir: str | Path) -> str:
    """How ``export.json`` names the folder an export came from: a model shipped in the
    package as its path in the package's source tree (``sentiment/models/imdb``), the same on
    every machine; any other folder by its absolute path."""
    path, package = Path(model_dir).resolve(), SHIPPED_ROOT.parent.resolve()
    if path.is_relative_to(package):
        return path.relative_to(package.parent).as_posix()
    return str(path)


def _refuse_unexportable(model_dir: Path, config) -> None:
    if config.task != "sentiment":
        raise ValueError(f"{model_dir} is a {config.task!r} model; only classifiers export")
    if config.model.head.pooling == "mil":
        raise ValueError(f"{model_dir} reads each sentence alone (pooling 'mil'), which the "
                         "ONNX graph does not split; score it with PyTorch")


def export_onnx(model_dir: str | Path, output: str | Path, quantize: str = "none",
                check_ids: list[list[int]] | None = None, max_length: int | None = None,
                keep: str | None = None) -> dict:
    """Write ``model_dir`` (a classifier or an ensemble of them) to ``output`` as ONNX, check
    the exported graph against the PyTorch model on ``check_ids`` (default: random texts of
    1-400 tokens) and return what ``export.json`` records. A float32 export that differs by
    more than :data:`TOLERANCE` is an error; an int8 one records its difference.
    ``max_length`` / ``keep``: the export reads that much of a long text, its start or end
    (:func:`sentiment.kinds.checkpoint.reading`; the check compares the graphs on the same ids)."""
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {QUANTIZE}, not {quantize!r}")
    model_dir, output = Path(model_dir), Path(output)
    if output.resolve() == model_dir.resolve():
        raise ValueError("export to a new folder, not over the model itself")
    model, vocab, config = load_pretrained(model_dir, device="cpu")
    _refuse_unexportable(model_dir, config)
    read_config = reading(config, max_length, keep)  # refused here, before any writing
    graph = _Probabilities(_exportable(model.float().eval()))
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

            with _quiet_root_warnings("Please consider to run pre-processing",
                                      "Quantization parameters for tensor"):
                quantize_dynamic(float_path, Path(tmp) / "int8.onnx",
                                 weight_type=QuantType.QInt8)
            (Path(tmp) / "int8.onnx").replace(output / ONNX_FILE)
        else:
            float_path.replace(output / ONNX_FILE)
    # the model's preprocessing (an ensemble's: its members', checked to be one)
    write_json(output / "config.json", read_config.to_dict())
    vocab.save(output / "vocab.json")
    copy_wide(model_dir, output)  # wide and deep: the n-gram part and head travel beside it
    check_ids = check_ids or _sample_ids(len(vocab), [1, 2, 17, 60, 133, 250, 400], seed=1)
    expected = score_ids(model, check_ids, 64, vocab.pad_index or 0, mixed_precision=False)
    exported = OnnxModel(output)
    difference = float(np.abs(exported.probabilities(check_ids) - expected).max())
    record = {"format": "onnx", "opset": OPSET, "quantize": quantize,
              "source": source_name(model_dir), "torch": torch.__version__,
              "checked_texts": len(check_ids), "max_abs_difference": difference,
              **read_limits(max_length, keep),
              "tolerance": TOLERANCE if quantize == "none" else None}
    if quantize == "none" and difference > TOLERANCE:
        raise RuntimeError(f"the exported model differs from {model_dir} by {difference:.2e} "
                           f"(more than {TOLERANCE:g}); {output} is not a faithful export")
    write_json(output / EXPORT_FILE, record)
    write_model_file(output, "onnx")
    return record
