"""What every text classifier is to its callers: one small protocol, and the capabilities some
kinds add.

A model of any kind (:mod:`sentiment.kinds.registry` lists them) has its ``kind``, ``path``
and ``labels``, and scores texts: :meth:`TextClassifier.text_probabilities` gives its
probabilities, :meth:`TextClassifier.score` the ``{"label", "score"}`` answers. What only some
kinds can do is a named capability (:data:`CAPABILITIES`) in the model's ``capabilities``;
callers ask :func:`supports` or :func:`require` instead of testing classes, and a model that
lacks one is refused in :func:`require`, in one place, with the reason its kind gives.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .decisions import Answers

# what some kinds can do beyond scoring texts, and what the words mean in a refusal
CAPABILITIES = {
    "explain": "explain which words pushed a label (it needs a word embedding to take "
               "gradients through)",
    "score_ids": "score token ids of its vocabulary (it reads texts its own way)",
    "quantize": "be quantized to int8 when loaded",
    "export": "be exported (sentiment export)",
    "move": "move to another device",
    "evaluate": "be evaluated on a data split of its own (its config names none)",
}


@runtime_checkable
class TextClassifier(Protocol):
    """The one interface every loaded classifier satisfies."""

    kind: str  # its registry kind (sentiment.kinds.registry.KINDS)
    path: str  # its folder ("" for a model built in memory)
    labels: list[str]
    capabilities: frozenset[str]  # names from CAPABILITIES
    answers: Answers  # its neutral band and unreadable threshold (answers.json)
    words: Container[str]  # the words it knows (a text of others is flagged unreadable)

    def text_probabilities(self, texts: Sequence[str], batch_size: int = 64,
                           mixed_precision: bool = True, **budget) -> np.ndarray:
        """P(second label) per text, ``(N,)``, for two labels; ``(N, C)`` for more."""

    def score(self, texts: Sequence[str], batch_size: int = 64, mixed_precision: bool = True,
              all_scores: bool = False, **budget) -> list[dict]:
        """``{"label", "score"}`` (and ``"scores"``) per text, in input order."""


class CapabilityError(ValueError):
    """A model was asked for something its kind cannot do."""


def supports(model, capability: str) -> bool:
    """Whether ``model`` has ``capability`` (a name from :data:`CAPABILITIES`)."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; expected one of "
                         f"{list(CAPABILITIES)}")
    return capability in getattr(model, "capabilities", frozenset())


def require(model, capability: str, hint: str = "", where: str | Path | None = None):
    """``model`` when it has ``capability``; else a :class:`CapabilityError` that names the
    model (``where``: its folder, when ``model`` is its class), its kind, what it cannot do and
    (``hint``, or the kind's own ``refusals``) what to do instead."""
    if supports(model, capability):
        return model
    reasons = [getattr(model, "refusals", {}).get(capability, ""), hint]
    where = where or getattr(model, "path", "") or "this model"
    raise CapabilityError(f"{where} ({getattr(model, 'kind', type(model).__name__)} model) "
                          f"cannot {CAPABILITIES[capability]}"
                          + "".join(f"; {reason}" for reason in reasons if reason))


class Refusing:
    """What any classifier answers when asked for a capability its kind lacks: ``explain`` on
    an ONNX export, an n-gram model or a cascade is :func:`require`'s refusal with the kind's
    reason (a kind that can explain overrides it)."""

    def explain(self, text: str, steps: int = 32, max_tokens: int | None = None) -> dict:
        """Which words pushed ``text``'s label, where the kind can tell."""
        require(self, "explain")
        raise AssertionError("a kind that can explain overrides explain()")

    def explaining_copy(self):
        """A copy whose weights are its own, to explain beside scoring (the server's)."""
        require(self, "explain")
        raise AssertionError("a kind that can explain overrides explaining_copy()")
