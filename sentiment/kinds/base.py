"""The shared base of the kinds that read a vocabulary's token ids (an LSTM, its ONNX export):
the cleaning, cutting and encoding of texts, and the joining of a wide-and-deep model's n-gram
part. What every kind shares is :mod:`sentiment.kinds.protocol`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import Config
from ..data.lengths import STEP_ROWS, cut
from ..text.clean import MAX_CHARS, cleaned
from ..text.tokenize import Tokenizer
from ..text.vocab import Vocab
from .decisions import Answers, log_odds, to_results
from .protocol import Refusing
from .wide import Wide

__all__ = ["MAX_CHARS", "MAX_TEXT_TOKENS", "SCORE_MAX_TOKENS", "TextModel"]
# A text is also cut to MAX_TEXT_TOKENS tokens before scoring (after MAX_CHARS characters), so
# that time and memory stay bounded; IMDB's longest review has ~2,800 tokens. (A batch's token
# budget is another thing: ``max_tokens``.)
MAX_TEXT_TOKENS = 5_000
# A PyTorch scoring batch also ends before its padded size (rows x longest) passes this many
# tokens: faster and lighter than plain batches of 64 (BENCHMARKS.md, "Inference")
SCORE_MAX_TOKENS = 16_384

class TextModel(Refusing):
    """The base of the kinds that score a vocabulary's token ids: labels and preprocessing.
    ``probabilities`` is the scorer's own (PyTorch in :mod:`sentiment.kinds.lstm`, ONNX Runtime
    in :mod:`sentiment.kinds.onnx`); everything else is shared."""

    kind = "lstm"
    capabilities = frozenset({"score_ids", "evaluate"})
    refusals: dict[str, str] = {}
    default_max_tokens: int | None = SCORE_MAX_TOKENS
    # how its scoring batches are cut: an RNN step's fixed cost in rows, or None for the greedy
    # cut (sentiment.data.lengths.score_in_length_order); benchmarks.batch_cuts sets it
    step_rows: float | None = STEP_ROWS
    answers = Answers()  # its folder's answers.json, set when loaded (sentiment.kinds.registry)

    def __init__(self, vocab: Vocab, config: Config, path: str = ""):
        if config.task != "sentiment":
            raise ValueError(f"{path or 'model'} is a {config.task!r} model, not a sentiment model")
        self.vocab = vocab
        self.config = config
        self.path = path
        self.labels = list(config.model.head.labels)
        self.num_classes = len(self.labels)
        self.tokenizer = Tokenizer(lowercase=config.data.lowercase)
        self.max_length = min(config.data.max_length or MAX_TEXT_TOKENS, MAX_TEXT_TOKENS)
        self.keep = config.data.keep  # a long text's start or end
        # a wide-and-deep folder's n-gram model and head (sentiment.kinds.wide), else None
        self.wide = Wide.load(path) if path else None

    @property
    def words(self) -> dict[str, int]:
        """The words the model knows: its vocabulary."""
        return self.vocab.stoi

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        """The tokens the model reads of each text (cleaned, cut to MAX_CHARS characters, then
        to max_length tokens: its first, or with ``data.keep="end"`` its last)."""
        tokenized = self.tokenizer.pipe(cleaned(texts))  # one thread at a time (text.tokenize)
        return [cut(tokens, self.max_length, self.keep) for tokens in tokenized]

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.vocab.encode(tokens) for tokens in self.tokens(texts)]

    def probabilities(self, ids: Sequence[Sequence[int]], batch_size: int = 64,
                      max_tokens: int | None = SCORE_MAX_TOKENS,
                      mixed_precision: bool = True) -> np.ndarray:
        """The deep part's probabilities of id sequences (``(N,)`` or ``(N, C)``), input order
        kept, before any wide part."""
        raise NotImplementedError

    def text_probabilities(self, texts: Sequence[str], batch_size: int = 64,
                           mixed_precision: bool = True, wide_logits: np.ndarray | None = None,
                           **budget) -> np.ndarray:
        """The model's probabilities of ``texts`` (``(N,)`` for two classes: P(second label)),
        the n-gram part joined where there is one (``wide_logits``: its log-odds of these
        texts, already computed; a cascade's stages share them). ``max_tokens`` (in
        ``budget``): the batch budget, else the kind's own default."""
        max_tokens = budget.get("max_tokens", self.default_max_tokens)
        probs = self.probabilities(self.encode(texts), batch_size, max_tokens, mixed_precision)
        if wide_logits is not None:
            return self.joined(probs, wide_logits)
        return self.with_wide(probs, texts)

    def text_logits(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """A binary model's log-odds of its second label per text, ``(N,)``, as
        :meth:`text_probabilities` scores them (PyTorch's token budget)."""
        return log_odds(self.text_probabilities(texts, batch_size, max_tokens=SCORE_MAX_TOKENS))

    def score(self, texts: Sequence[str], batch_size: int = 64, mixed_precision: bool = True,
              all_scores: bool = False, **budget) -> list[dict]:
        """``{"label", "score"}`` (and ``"scores"``) per text, in input order; the texts are
        taken as given (:func:`sentiment.inference.predict.predict` checks them first)."""
        wide = None if self.wide is None else self.wide.logits(texts)
        return self.score_encoded(self.encode(texts), batch_size, mixed_precision, all_scores,
                                  budget.get("max_tokens", self.default_max_tokens), wide)

    def score_encoded(self, ids: Sequence[Sequence[int]], batch_size: int = 64,
                      mixed_precision: bool = True, all_scores: bool = False,
                      max_tokens: int | None = SCORE_MAX_TOKENS,
                      wide: np.ndarray | None = None) -> list[dict]:
        """:meth:`score` of texts already :meth:`encode`-d (``wide``: a wide-and-deep model's
        n-gram log-odds of the same texts, ``self.wide.logits(texts)``)."""
        probs = self.probabilities(ids, batch_size, max_tokens, mixed_precision)
        return to_results(self.joined(probs, wide), self.labels, all_scores)

    def joined(self, probs: np.ndarray, wide: np.ndarray | None) -> np.ndarray:
        """The model's probabilities from its deep part's: joined with the n-gram log-odds
        ``wide`` when the model is wide and deep (which needs them)."""
        if self.wide is None:
            if wide is not None:
                raise ValueError(f"{self.path} is not a wide-and-deep model: no n-gram scores "
                                 "to join")
            return probs
        if wide is None:
            raise ValueError(f"{self.path} is wide and deep: its scores need the texts' n-gram "
                             "log-odds (score(texts), or wide=model.wide.logits(texts))")
        return self.wide.probabilities(probs, wide)

    def with_wide(self, probs: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """:meth:`joined` for the texts themselves: their n-gram log-odds scored here when the
        model is wide and deep, ``probs`` as they are otherwise."""
        return self.joined(probs, None if self.wide is None else self.wide.logits(texts))

