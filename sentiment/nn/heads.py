"""Task models: small heads that receive a shared :class:`~sentiment.nn.core.RNNCore`.

Every task model follows :class:`TaskModel`, the contract of the one training loop:
``forward(batch, state=None) -> ModelOutput(logits, loss or None, state)``,
``batch_metrics(output, batch) -> dict`` of sums and ``summarize(sums) -> dict`` of metrics, and
``selection_metric`` (name, "max" or "min") for keeping the best epoch. :func:`build_model` makes
any of them from a :class:`~sentiment.config.ModelConfig`.
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import HeadConfig, ModelConfig
from ..data.batching import Batch
from ..data.lengths import cut_batches
from ..nn.core import RNNCore, valid_mask


class ModelOutput(NamedTuple):
    logits: torch.Tensor | None
    loss: torch.Tensor | None
    state: list | None
    sums: dict | None = None  # per-batch metric sums a head computed on the way (LM directions)


@runtime_checkable
class TaskModel(Protocol):
    """What :func:`sentiment.train.loop.train` needs of a model."""

    task: ClassVar[str]
    selection_metric: ClassVar[tuple[str, str]]
    core: RNNCore

    def __call__(self, batch: Batch, state: list | None = None) -> ModelOutput: ...

    def batch_metrics(self, output: ModelOutput, batch: Batch) -> dict: ...

    def summarize(self, sums: dict) -> dict: ...


def float32_linear(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``linear(x)`` in float32 even inside autocast: the logits (and the probabilities and
    losses made from them) keep float32 precision; the layer is small next to the RNN."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        return linear(x.float())


SENTENCE_END_TOKENS = (".", "!", "?")
SENTENCE_GROUP_TOKENS = 8_192  # padded tokens the core reads at once in a mil head


def sentence_spans(inputs: torch.Tensor, lengths: torch.Tensor | None,
                   ends: torch.Tensor, min_tokens: int = 2) -> tuple[list[int], list[int],
                                                                    list[int]]:
    """``(owner, start, length)`` of every sentence of every row of ``inputs`` (B, T): a
    sentence ends after a token in ``ends``; a piece of fewer than ``min_tokens`` tokens joins
    the sentence before it; every row has at least one sentence."""
    steps = inputs.size(1)
    row_lengths = [steps] * inputs.size(0) if lengths is None else lengths.tolist()
    is_end = torch.isin(inputs, ends).cpu()
    owner, start, length = [], [], []
    for row, (size, marks) in enumerate(zip(row_lengths, is_end, strict=True)):
        cuts = [int(p) + 1 for p in marks[:size].nonzero().flatten().tolist()]
        if not cuts or cuts[-1] != size:
            cuts.append(size)
        begin, first = 0, len(start)
        for cut in cuts:
            if cut - begin >= min_tokens or len(start) == first:
                owner.append(row)
                start.append(begin)
                length.append(cut - begin)
            else:  # a stray end mark ("!!!", "...") stays with its sentence
                length[-1] += cut - begin
            begin = cut
    return owner, start, length


class SentimentClassifier(nn.Module):
    """Core -> pooled states -> dropout -> linear to one logit (positive vs negative).

    ``pooling="final"``: the last layer's final forward and backward states (the seed's design).
    ``pooling="concat"``: those plus max- and mean-pooling over all valid positions (fastai's
    ``PoolingLinearClassifier``).
    ``pooling="mil"``: multiple-instance learning (Angelidis & Lapata 2018): each sentence of a
    text is read alone and scored as ``concat`` scores a text, and the text's logit is the
    sentences' logits weighted by an attention over them (a softmax per text), so that review
    labels alone teach what each sentence says. A one-sentence text is its sentence's score.
    Two labels only; the sentence ends are token ids set from the vocabulary
    (:meth:`set_sentence_ends`, saved with the weights).
    """

    task = "sentiment"
    selection_metric = ("accuracy", "max")

    def __init__(self, core: RNNCore, config: HeadConfig | None = None):
        super().__init__()
        config = config or HeadConfig()
        if len(config.labels) < 2:
            raise ValueError(f"a classifier needs two or more labels, got {config.labels}")
        self.num_classes = len(config.labels)
        self.core = core
        self.config = config
        self.dropout = nn.Dropout(config.output_dropout)
        width = core.config.output_dim * (1 if config.pooling == "final" else 3)
        # fastai's LinBnDrop: without it, dropout on near-constant (saturated) pooled features of
        # a pretrained core drowns their small variation across reviews (BENCHMARKS.md)
        self.norm = nn.BatchNorm1d(width) if config.batch_norm else nn.Identity()
        # two classes: one logit and BCEWithLogits; more: one logit per class and cross-entropy
        self.fc = nn.Linear(width, 1 if self.num_classes == 2 else self.num_classes)
        if config.pooling == "mil":
            if self.num_classes != 2:
                raise ValueError("pooling='mil' scores two labels; this data has "
                                 f"{self.num_classes}")
            self.attention = nn.Linear(width, 1)
            nn.init.zeros_(self.attention.weight)  # starts as the sentences' mean
            nn.init.zeros_(self.attention.bias)
            self.register_buffer("sentence_ends", torch.full((len(SENTENCE_END_TOKENS),), -1))

    # a mil head's own weights: absent from a saved head of other pooling, so they start fresh
    fresh_weights = ("attention.weight", "attention.bias", "sentence_ends")

    def set_sentence_ends(self, ids: list[int | None]) -> None:
        """The token ids that end a sentence (``None``: not in the vocabulary)."""
        with torch.no_grad():
            self.sentence_ends.copy_(torch.tensor([-1 if i is None else i for i in ids]))

    @property
    def pooling(self) -> str:
        return self.config.pooling

    def _pooled(self, inputs: torch.Tensor, lengths: torch.Tensor | None,
                state: list | None = None) -> torch.Tensor:
        """The pooled features the output layer reads, (B, width), float32."""
        out = self.core(inputs, lengths, state)
        features = out.final.float()  # (B, D*H); pooled in float32 under autocast too
        if self.pooling in ("concat", "mil"):
            outputs = out.outputs
            batch_size, steps, _ = outputs.shape
            valid = valid_mask(lengths, batch_size, steps, outputs.device)
            valid = valid.unsqueeze(-1)  # (B, T, 1)
            maxed = outputs.masked_fill(~valid, float("-inf")).amax(dim=1).float()  # (B, D*H)
            mean = outputs.sum(dim=1, dtype=torch.float32) / valid.sum(dim=1)  # (B, D*H)
            features = torch.cat([features, maxed, mean], dim=-1)  # (B, 3*D*H)
        return self.norm(features)

    def sentence_logits(self, inputs: torch.Tensor, lengths: torch.Tensor | None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits, attention, owner)`` of every sentence of every text (``mil`` only)."""
        owner, start, length = sentence_spans(inputs, lengths, self.sentence_ends)
        device = inputs.device
        owner_t = torch.tensor(owner, device=device)
        start_t = torch.tensor(start, device=device)
        length_t = torch.tensor(length, device=device)
        offsets = torch.arange(int(max(length)), device=device)
        positions = start_t[:, None] + offsets  # (S, Ls)
        inside = offsets[None, :] < length_t[:, None]
        pieces = inputs[owner_t[:, None], positions.clamp_max(inputs.size(1) - 1)]
        pieces = pieces.masked_fill(~inside, self.core.config.pad_index)
        # read in length-sorted groups: one padded block of a text's sentences (a few long,
        # many short) held ~10x the tokens of the sentences themselves on IMDB
        order = np.argsort(length, kind="stable")
        groups = cut_batches(order, length, len(length), SENTENCE_GROUP_TOKENS)
        parts = []
        for group in map(torch.as_tensor, groups):
            # which text and where in it each piece of this group is, for whoever hooks the
            # embedding while it runs (explanations map the pieces' attributions back)
            self.pieces_read = (owner_t[group], start_t[group], length_t[group])
            parts.append(self._pooled(pieces[group][:, : int(length_t[group].max())],
                                      length_t[group]))
        features = torch.cat(parts)[torch.as_tensor(np.argsort(np.concatenate(groups)))]
        logits = float32_linear(self.fc, self.dropout(features)).squeeze(-1)  # (S,)
        attention = float32_linear(self.attention, features).squeeze(-1)  # (S,)
        return logits, attention, owner_t

    def _mil_logits(self, batch: Batch) -> torch.Tensor:
        logits, attention, owner = self.sentence_logits(batch.inputs, batch.lengths)
        rows = batch.inputs.size(0)
        top = torch.full((rows,), float("-inf"), device=logits.device).scatter_reduce(
            0, owner, attention, "amax")
        weight = (attention - top[owner]).exp()
        total = torch.zeros(rows, device=logits.device).index_add(0, owner, weight)
        return torch.zeros(rows, device=logits.device).index_add(
            0, owner, weight / total[owner] * logits)  # (B,)

    def forward(self, batch: Batch, state: list | None = None) -> ModelOutput:
        if self.pooling == "mil":
            logits = self._mil_logits(batch).unsqueeze(-1)  # (B, 1)
        else:
            features = self._pooled(batch.inputs, batch.lengths, state)
            logits = float32_linear(self.fc, self.dropout(features))  # (B, 1) or (B, C)
        loss = None
        if self.num_classes == 2:
            logits = logits.squeeze(-1)  # (B,)
            if batch.targets is not None:
                loss = F.binary_cross_entropy_with_logits(logits.float(), batch.targets.float())
        elif batch.targets is not None:
            loss = F.cross_entropy(logits.float(), batch.targets.long())
        return ModelOutput(logits, loss, None)

    @staticmethod
    def batch_metrics(output: ModelOutput, batch: Batch) -> dict:
        count = batch.targets.numel()
        logits = output.logits.detach()
        if logits.ndim == 1:  # a soft target (distillation) counts as its nearer label
            predicted, labels = (logits > 0).float(), (batch.targets >= 0.5).float()
        else:
            predicted, labels = logits.argmax(-1).float(), batch.targets
        return {
            "loss_sum": float(output.loss.detach()) * count,
            "correct": int((predicted == labels).sum()),
            "count": count,
        }

    @staticmethod
    def summarize(sums: dict) -> dict:
        count = max(sums.get("count", 0), 1)
        return {"loss": sums["loss_sum"] / count, "accuracy": sums["correct"] / count}


class EnsembleClassifier(nn.Module):
    """Classifiers of the same labels and vocabulary whose class probabilities are averaged.

    Its logits are those of the mean probability -- ``log(mean p) - log(mean (1 - p))`` for two
    classes, the log of the mean softmax otherwise -- so whatever scores a classifier (``predict``,
    reports, the server) scores an ensemble unchanged. The members may differ in architecture
    (a bidirectional core beside one-direction ones, ULMFiT's forward + backward ensemble).
    """

    task = "sentiment"
    selection_metric = SentimentClassifier.selection_metric
    batch_metrics = staticmethod(SentimentClassifier.batch_metrics)
    summarize = staticmethod(SentimentClassifier.summarize)

    def __init__(self, members: list[SentimentClassifier]):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs two or more classifiers, got {len(members)}")
        classes = {member.num_classes for member in members}
        if len(classes) != 1:
            raise ValueError(f"the members predict different numbers of classes: {classes}")
        self.members = nn.ModuleList(members)
        self.num_classes = classes.pop()

    @property
    def embeddings(self) -> list[nn.Embedding | None]:
        return [member.core.embedding for member in self.members]

    def forward(self, batch: Batch, state: list | None = None) -> ModelOutput:
        logits = torch.stack([member(batch).logits.float() for member in self.members])
        log_count = math.log(len(self.members))
        if self.num_classes == 2:  # log of the mean of each side's probability, stably
            combined = (torch.logsumexp(F.logsigmoid(logits), 0)
                        - torch.logsumexp(F.logsigmoid(-logits), 0))
            loss = (None if batch.targets is None else
                    F.binary_cross_entropy_with_logits(combined, batch.targets.float()))
        else:
            combined = torch.logsumexp(torch.log_softmax(logits, -1), 0) - log_count
            loss = (None if batch.targets is None else
                    F.cross_entropy(combined, batch.targets.long()))
        return ModelOutput(combined, loss, None)


class LanguageModel(nn.Module):
    """Core -> one output layer over the vocabulary, shared by both directions.

    A unidirectional core predicts the next symbol at every position. A bidirectional core in
    the ``separate`` layout is a biLM (ELMo): its forward stack predicts the next token and its
    backward stack the previous one, in the same pass; the loss is the mean of the two. Batches
    are windows of a stream (no ``lengths``; state may carry over) or whole padded reviews
    (``lengths`` set; every review from a zero state, as the classifier reads it).
    ``output_layer="adaptive"`` is :class:`torch.nn.AdaptiveLogSoftmaxWithLoss` (frequent words
    in a small head, rare ones in smaller projected clusters), for word vocabularies;
    ``"full"`` is a float32 linear layer with a full softmax (optionally tied to the embedding).
    """

    task = "language-model"
    selection_metric = ("perplexity", "min")

    def __init__(self, core: RNNCore, config: HeadConfig | None = None):
        super().__init__()
        config = config or HeadConfig(output_dropout=0.0)
        core_config = core.config
        if core_config.bidirectional and not core_config.separate:
            raise ValueError("a language model's core must be unidirectional, or bidirectional "
                             "with layout='separate' (each direction its own stack)")
        if core_config.reverse:
            raise ValueError("a language model reads forward; for a backward LM train a "
                             "bidirectional core with layout='separate'")
        self.core = core
        self.config = config
        self.dropout = nn.Dropout(config.output_dropout)
        hidden, vocab_size = core_config.hidden_dim, core_config.vocab_size
        if config.output_layer == "adaptive":
            # cutoffs past a small vocabulary are dropped; at least one cluster remains
            cutoffs = [c for c in config.cutoffs if 0 < c < vocab_size - 1] or [vocab_size // 2]
            if config.tie_weights:
                raise ValueError("weight tying needs output_layer='full'")
            self.output = nn.AdaptiveLogSoftmaxWithLoss(hidden, vocab_size, cutoffs, div_value=4.0,
                                                         head_bias=True)
            for tail in self.output.tail:  # every word gets a bias: see set_output_prior
                tail[1] = nn.Linear(tail[1].in_features, tail[1].out_features)
        else:
            self.decoder = nn.Linear(hidden, vocab_size)
        if config.tie_weights:
            if core_config.input_type != "embedding":
                raise ValueError("weight tying needs input_type='embedding'")
            if core_config.embed_dim != core_config.hidden_dim:
                raise ValueError(
                    f"weight tying needs embed_dim == hidden_dim "
                    f"(got {core_config.embed_dim} and {core_config.hidden_dim})"
                )
            self.decoder.weight = self.core.embedding.weight

    @torch.no_grad()
    def set_output_prior(self, counts: torch.Tensor | np.ndarray) -> None:
        """Start the output biases at the log unigram distribution of ``counts`` (one count per
        vocabulary entry), so the untrained model already predicts word frequencies.

        Without it the core learns the frequencies itself, as a constant state: within 20 Adam
        steps on IMDB most top-layer units saturated and the state stopped depending on the input
        at all (BENCHMARKS.md), and the LM never left the unigram model. Karpathy's "init the
        output bias" rule; with the adaptive softmax each cluster's words get their
        log-probability within the cluster and the head's cluster tokens the cluster's share.
        """
        counts = torch.as_tensor(np.asarray(counts), dtype=torch.float64).clamp_min(0) + 0.5
        if counts.numel() != self.core.config.vocab_size:
            raise ValueError(f"{counts.numel()} counts for a vocabulary of "
                             f"{self.core.config.vocab_size}")
        if self.config.output_layer != "adaptive":
            self.decoder.bias.copy_((counts / counts.sum()).log())
            return
        output, probs = self.output, counts / counts.sum()
        edges = [0, *output.cutoffs]  # cutoffs ends with the vocabulary size
        shortlist = probs[: edges[1]].log()
        cluster_mass = [probs[lo:hi].sum() for lo, hi in zip(edges[1:-1], edges[2:])]
        output.head.bias.copy_(torch.cat([shortlist, torch.stack(cluster_mass).log()]))
        for tail, lo, hi, mass in zip(output.tail, edges[1:-1], edges[2:], cluster_mass):
            tail[1].bias.copy_((probs[lo:hi] / mass).log())

    def _log_probs(self, features: torch.Tensor) -> torch.Tensor:
        """Scores over the vocabulary for ``features`` (..., H): logits or log-probabilities."""
        if self.config.output_layer == "adaptive":
            flat = features.reshape(-1, features.size(-1)).float()
            with torch.autocast(device_type=flat.device.type, enabled=False):
                return self.output.log_prob(flat).view(*features.shape[:-1], -1)
        return float32_linear(self.decoder, features)

    def _loss(self, features: torch.Tensor, targets: torch.Tensor):
        """``(logits or None, mean negative log-likelihood)`` of ``targets`` (B, T) given
        ``features`` (B, T, H); the adaptive layer never forms the full logits."""
        flat_targets = targets.reshape(-1).long()
        if self.config.output_layer == "adaptive":
            return None, self.output(features.reshape(-1, features.size(-1)), flat_targets).loss
        logits = float32_linear(self.decoder, features)  # (B, T, V)
        return logits, F.cross_entropy(logits.reshape(-1, logits.size(-1)), flat_targets)

    def forward(self, batch: Batch, state: list | None = None) -> ModelOutput:
        if batch.lengths is not None:
            return self._reviews_forward(batch)
        out = self.core(batch.inputs, None, state)
        hidden = self.core.config.hidden_dim
        forward_features = self.dropout(out.outputs[..., :hidden])  # (B, T, H)
        if batch.targets is None:
            return ModelOutput(self._log_probs(forward_features), None, out.state)
        logits, forward_loss = self._loss(forward_features, batch.targets)
        if not self.core.config.bidirectional:
            return ModelOutput(logits, forward_loss, out.state)
        # the backward stack at position t has read t..T-1 and predicts the token at t - 1
        backward_features = self.dropout(out.outputs[:, 1:, hidden:])  # (B, T-1, H)
        _, backward_loss = self._loss(backward_features, batch.inputs[:, :-1])
        forward_count, backward_count = batch.targets.numel(), batch.inputs[:, :-1].numel()
        sums = {"forward_loss_sum": float(forward_loss.detach()) * forward_count,
                "backward_loss_sum": float(backward_loss.detach()) * backward_count,
                "backward_count": backward_count}
        return ModelOutput(logits, (forward_loss + backward_loss) / 2, out.state, sums)

    def _reviews_forward(self, batch: Batch) -> ModelOutput:
        """Whole padded reviews (``batch.lengths`` set), read as the classifier reads them: the
        forward stack at position t predicts token t + 1, the backward stack at t + 1 predicts
        token t, for every t with both positions inside the review; padding is never a target."""
        out = self.core(batch.inputs, batch.lengths)
        hidden = self.core.config.hidden_dim
        batch_size, steps = batch.inputs.shape
        pairs = valid_mask(batch.lengths, batch_size, steps, batch.inputs.device)[:, 1:]
        count = int(pairs.sum())
        if count == 0:
            raise ValueError("a language-model batch needs a review of at least two tokens")
        features = self.dropout(out.outputs[:, :-1, :hidden][pairs])  # (N, H)
        _, forward_loss = self._loss(features, batch.inputs[:, 1:][pairs])
        sums = {"count": count}
        if not self.core.config.bidirectional:
            sums["loss_sum"] = float(forward_loss.detach()) * count
            return ModelOutput(None, forward_loss, None, sums)
        features = self.dropout(out.outputs[:, 1:, hidden:][pairs])  # (N, H)
        _, backward_loss = self._loss(features, batch.inputs[:, :-1][pairs])
        loss = (forward_loss + backward_loss) / 2
        sums.update(loss_sum=float(loss.detach()) * count,
                    forward_loss_sum=float(forward_loss.detach()) * count,
                    backward_loss_sum=float(backward_loss.detach()) * count,
                    backward_count=count)
        return ModelOutput(None, loss, None, sums)

    @staticmethod
    def batch_metrics(output: ModelOutput, batch: Batch) -> dict:
        if output.sums is not None and "count" in output.sums:
            return dict(output.sums)  # whole reviews: the head counted the predicted tokens
        count = batch.targets.numel()
        return {"loss_sum": float(output.loss.detach()) * count, "count": count,
                **(output.sums or {})}

    @staticmethod
    def summarize(sums: dict) -> dict:
        count = max(sums.get("count", 0), 1)
        loss = sums["loss_sum"] / count
        metrics = {"loss": loss, "perplexity": math.exp(min(loss, 50.0)),
                   "bits_per_char": loss / math.log(2)}
        if "backward_loss_sum" in sums:
            forward = sums["forward_loss_sum"] / count
            backward = sums["backward_loss_sum"] / max(sums["backward_count"], 1)
            metrics.update(forward_perplexity=math.exp(min(forward, 50.0)),
                           backward_perplexity=math.exp(min(backward, 50.0)))
        return metrics


HEADS = {"sentiment": SentimentClassifier, "word-lm": LanguageModel, "char-lm": LanguageModel}


def build_model(task: str, config: ModelConfig) -> nn.Module:
    """The task model for ``config``: one core (``config.core``, whose ``vocab_size`` must be
    set) and ``task``'s head on it."""
    if task not in HEADS:
        raise ValueError(f"unknown task {task!r}; expected one of {list(HEADS)}")
    return HEADS[task](RNNCore(config.core), config.head)
