"""The shared RNN core: embedding or one-hot input -> stacked (bi)directional LSTM/GRU/RNN.

Both heads (sentiment classifier, character language model) sit on this module.

Padding never changes a result. Each layer and direction is its own single-layer RNN, so the
backward direction can read each sequence reversed *within its own length*::

    tokens    a b c <pad> <pad>      (length 3)
    forward   a b c <pad> <pad>      -> final state at t = 2 (gathered), padding comes after it
    backward  c b a <pad> <pad>      -> final state at t = 2, outputs re-reversed to positions

``padding_mode`` chooses how:

- ``"exact"``: the reversal above on padded tensors (the fast fused kernels; best on CPU, where
  packed sequences were much slower: BENCHMARKS.md, "Training speed and memory");
- ``"packed"``: ``pack_padded_sequence`` per layer (cuDNN handles packing well);
- ``"auto"``: packed on CUDA, exact elsewhere;
- ``"padded"``: the seed tutorial's reference behaviour -- both directions read the padding and
  the final state is the state after the last (padded) step. Inexact; used by the benchmark.

``layout`` chooses how a bidirectional stack is wired:

- ``"joint"`` (the classic BiLSTM): layer ``l + 1`` of each direction reads both directions of
  layer ``l``;
- ``"separate"`` (ELMo): each direction is its own stack, so the forward stack never sees a later
  token and the backward stack never an earlier one. Both can then be trained as language models
  (forward: next token, backward: previous token) and the same weights serve the classifier::

      joint      fwd2 <- [fwd1, bwd1] -> bwd2        separate   fwd2 <- fwd1    bwd1 -> bwd2
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..config import CoreConfig

RNN_TYPES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
State = list  # one entry per (layer, direction): a tensor (GRU/RNN) or an (h, c) tuple (LSTM)


class CoreOutput(NamedTuple):
    outputs: torch.Tensor  # (B, T, D*H) last layer, zero where padded
    final: torch.Tensor  # (B, D*H) last layer's final states (forward and backward)
    state: State  # to carry into the next call (exact for unpadded input or packed mode)


class _Permute(torch.autograd.Function):
    """``x.gather(1, index)`` for an ``index`` that is its own inverse (a reversal): the
    gradient is the same gather, instead of the slower ``scatter_add`` autograd would use."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        return x.gather(1, index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (index,) = ctx.saved_tensors
        return grad.gather(1, index), None


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence of ``x`` (B, T, ...) within its own length; padding stays last."""
    if lengths is None:
        return x.flip(1)
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)  # (1, T)
    lengths = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (B, T)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return _Permute.apply(x, index)


def valid_mask(lengths: torch.Tensor | None, batch: int, steps: int, device) -> torch.Tensor:
    """``(B, T)`` booleans: True at real positions, False at padding (all True without lengths)."""
    if lengths is None:
        return torch.ones(batch, steps, dtype=torch.bool, device=device)
    return torch.arange(steps, device=device).unsqueeze(0) < lengths.to(device).unsqueeze(1)


def detach_state(state):
    """Detach a hidden state (tensor, tuple or list of them) from the graph, for truncated BPTT."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a faster mask on CPU; the same distribution, to 1/32768 in ``p``.

    On CPU, ``nn.Dropout`` draws one Bernoulli sample per element from the single-threaded
    generator, a visible share of a training step for the activations between the LSTM layers
    (BENCHMARKS.md, "Training speed and memory"). Here each element gets one 15-bit integer
    from ``random_()`` and is kept when it falls below ``(1 - p) * 32768``, several times faster
    forward and backward. Other devices use ``nn.Dropout`` unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or self.p == 1:
            return super().forward(x)
        keep_below = round((1.0 - self.p) * 32768)
        keep = torch.empty(x.shape, dtype=torch.int16, device=x.device).random_() < keep_below
        return x * keep * (32768 / keep_below)


class RNNCore(nn.Module):
    """Embedding (or one-hot) input followed by stacked, optionally bidirectional RNN layers."""

    def __init__(self, config: CoreConfig):
        super().__init__()
        if config.vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {config.vocab_size}")
        self.config = config
        if config.input_type == "embedding":
            self.embedding = nn.Embedding(
                config.vocab_size, config.embed_dim, padding_idx=config.pad_index
            )
        else:
            self.embedding = None
        self.input_dropout = Dropout(config.input_dropout)
        self.dropout = Dropout(config.dropout)
        rnn_class = RNN_TYPES[config.rnn_type]
        self.rnns = nn.ModuleList()
        for layer in range(config.num_layers):
            for _ in range(config.num_directions):
                self.rnns.append(
                    rnn_class(config.layer_input_dim(layer), config.hidden_dim, batch_first=True)
                )

    def load_embeddings(self, matrix: torch.Tensor, freeze: bool = False) -> None:
        """Initialise the embedding from a ``(vocab_size, embed_dim)`` matrix."""
        if self.embedding is None:
            raise ValueError("a one-hot core has no embedding to load")
        matrix = torch.as_tensor(matrix)
        if matrix.shape != self.embedding.weight.shape:
            raise ValueError(
                f"embedding matrix has shape {tuple(matrix.shape)}, "
                f"expected {tuple(self.embedding.weight.shape)}"
            )
        with torch.no_grad():
            self.embedding.weight.copy_(matrix)
        self.embedding.weight.requires_grad_(not freeze)

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.embedding is None:
            return F.one_hot(inputs, self.config.vocab_size).float()  # (B, T, V)
        return self.embedding(inputs)  # (B, T, E)

    def _padding_mode(self, device: torch.device) -> str:
        mode = self.config.padding_mode
        if mode == "auto":
            return "packed" if device.type == "cuda" else "exact"
        return mode

    def _run(self, rnn: nn.RNNBase, x, lengths, hidden, mode):
        if mode == "packed" and lengths is not None:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, hidden = rnn(packed, hidden)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
            return out, hidden
        return rnn(x, hidden)

    def forward(
        self,
        inputs: torch.Tensor,
        lengths: torch.Tensor | None = None,
        state: State | None = None,
    ) -> CoreOutput:
        """Run the stack on ``inputs`` (B, T) with true ``lengths`` (B,) (None: all full)."""
        mode = self._padding_mode(inputs.device)
        directions = self.config.num_directions
        if lengths is not None and mode != "padded" and bool((lengths == inputs.size(1)).all()):
            lengths = None  # no padding in this batch: nothing to correct for
        x = self.input_dropout(self.embed(inputs))
        hidden_dim = self.config.hidden_dim
        new_state: State = []
        for layer in range(self.config.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                hidden = None if state is None else state[index]
                # separate layout: each direction reads only its own half of the layer below
                layer_input = x
                if layer > 0 and self.config.separate:
                    layer_input = x[..., direction * hidden_dim : (direction + 1) * hidden_dim]
                if direction == 0 and not self.config.reverse:
                    out, hidden = self._run(self.rnns[index], layer_input, lengths, hidden, mode)
                elif mode == "padded":
                    out, hidden = self.rnns[index](layer_input.flip(1), hidden)
                    out = out.flip(1)
                else:
                    reversed_x = reverse_within_lengths(layer_input, lengths)
                    out, hidden = self._run(self.rnns[index], reversed_x, lengths, hidden, mode)
                    out = reverse_within_lengths(out, lengths)
                outputs.append(out)
                new_state.append(hidden)
            x = torch.cat(outputs, dim=-1) if directions > 1 else outputs[0]  # (B, T, D*H)
            if layer < self.config.num_layers - 1:
                x = self.dropout(x)
        final = self._final(x, lengths, new_state, mode)
        if lengths is not None and mode != "padded":
            x = x * valid_mask(lengths, x.size(0), x.size(1), x.device).unsqueeze(-1)
        return CoreOutput(x, final, new_state)

    def _final(self, x: torch.Tensor, lengths, state: State, mode: str) -> torch.Tensor:
        hidden_dim = self.config.hidden_dim
        if mode == "padded":
            last = state[-self.config.num_directions :]
            last = [s[0] if isinstance(s, tuple) else s for s in last]
            return torch.cat([h[-1] for h in last], dim=-1)  # (B, D*H)
        if self.config.reverse:  # a text's last state read from its end is at its first token
            return x[:, 0, :hidden_dim]
        batch = torch.arange(x.size(0), device=x.device)
        if lengths is None:
            last_step = torch.full_like(batch, x.size(1) - 1)
        else:
            last_step = lengths.to(x.device) - 1
        forward_final = x[batch, last_step, :hidden_dim]  # (B, H)
        if self.config.num_directions == 1:
            return forward_final
        return torch.cat([forward_final, x[:, 0, hidden_dim:]], dim=-1)  # (B, 2H)
