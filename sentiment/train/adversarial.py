"""Adversarial training on the word embeddings, labelled and virtual (Miyato, Dai & Goodfellow,
2017), as hooks of the training loop (:class:`~sentiment.train.hooks.TrainingHook`).

:func:`adversarial_hooks` builds what a :class:`~sentiment.config.TrainConfig` asks for: both
options share one :class:`AdversarialEmbedding` (a forward hook on the embedding).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig
from ..data.batching import Batch, BatchSource
from ..runtime.precision import autocast
from ..train.hooks import Step, TrainingHook


def adversarial_hooks(model: nn.Module, config: TrainConfig,
                      unlabelled: BatchSource | None = None) -> list[TrainingHook]:
    """The hooks for ``config.adversarial`` and ``config.virtual_adversarial`` (none when both
    are 0); ``unlabelled``: the virtual adversary's reviews."""
    if config.virtual_adversarial > 0 and getattr(model, "task", None) != "sentiment":
        raise ValueError("virtual_adversarial trains classifiers (it keeps a class prediction "
                         "steady); a language model learns from unlabelled text directly")
    if config.virtual_adversarial > 0 and unlabelled is None:
        raise ValueError("virtual_adversarial needs unlabelled reviews to train on")
    if config.adversarial == 0 and config.virtual_adversarial == 0:
        return []
    adversary = AdversarialEmbedding(model.core.embedding, config.adversarial)
    hooks: list[TrainingHook] = []
    if config.adversarial > 0:
        hooks.append(AdversarialTraining(adversary))
    if config.virtual_adversarial > 0:
        hooks.append(VirtualAdversary(adversary, config.virtual_adversarial, unlabelled))
    return hooks


class AdversarialEmbedding:
    """Adversarial training on the word embeddings (Miyato et al., 2017, without their embedding
    normalisation): after the clean loss's backward pass, :meth:`perturb` sets each text's push
    ``r = epsilon * ||e|| * g / ||g||`` (``e`` its embeddings, ``g`` the loss's gradient on them,
    norms over the whole text), and the next forward pass adds ``r`` to the embeddings. Scaled
    by ``||e||``, the push cannot be outgrown by growing the embeddings. A forward hook on the
    embedding; :meth:`remove` takes it off."""

    def __init__(self, embedding: nn.Module | None, epsilon: float):
        if embedding is None:
            raise ValueError("adversarial training needs a model with a word embedding "
                             "(input_type='embedding')")
        self.epsilon = epsilon
        self.captured: torch.Tensor | None = None
        self.push: torch.Tensor | None = None
        self.handle = embedding.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor | None:
        if self.push is not None:
            return output + self.push
        if not torch.is_grad_enabled():
            return None
        if not output.requires_grad:  # frozen embeddings: the gradient is still wanted
            output = output.detach().requires_grad_()
        output.retain_grad()
        self.captured = output
        return output

    def perturb(self, gradient: torch.Tensor | None = None, epsilon: float | None = None
                ) -> bool:
        """Set the push from the last training forward pass's gradient (its embeddings' ``.grad``
        unless ``gradient`` is given); False if it had none. ``epsilon``: this push's size
        instead of the adversary's own."""
        embedded, self.captured = self.captured, None
        if embedded is None:
            return False
        if gradient is None:
            gradient = embedded.grad
        if gradient is None:
            return False
        gradient = torch.nan_to_num(gradient.float())  # (B, T, E)
        direction = gradient / gradient.norm(dim=(1, 2), keepdim=True).clamp_min(1e-12)
        epsilon = self.epsilon if epsilon is None else epsilon
        size = epsilon * embedded.detach().float().norm(dim=(1, 2), keepdim=True)  # (B,1,1)
        self.push = (size * direction).to(embedded.dtype)
        return True

    def clear(self) -> None:
        self.push = None

    def remove(self) -> None:
        self.handle.remove()
        self.captured = self.push = None


class AdversarialTraining(TrainingHook):
    """Every training batch also runs pushed along its loss's gradient
    (:class:`AdversarialEmbedding`), that loss added: a second forward and backward pass."""

    def __init__(self, adversary: AdversarialEmbedding):
        self.adversary = adversary

    def after_backward(self, step: Step) -> None:
        if self.adversary.perturb():
            pushed = step.run()
            self.adversary.clear()
            step.backward(pushed.loss)

    def remove(self) -> None:
        self.adversary.remove()


class VirtualAdversary(TrainingHook):
    """Virtual adversarial training (Miyato et al., 2017) on unlabelled reviews.

    Each training step also takes a batch of unlabelled reviews: the model's own class
    probabilities ``p`` on them (held fixed), each review's embeddings pushed by ``epsilon`` times
    their norm in the direction that most changes ``p``, and the KL divergence from ``p`` to the
    pushed prediction added to the loss, so the model learns to be smooth around text it has no
    labels for. The direction is the gradient of the loss against the model's own predicted
    class: for two classes that is, up to sign, the gradient of the logit, which is what
    Miyato's one power iteration approximates (the KL is even in the push to second order), so
    it needs no finite-difference probe (which bfloat16 would round away). Costs one forward and
    backward pass of the unlabelled batch to find the push and one to learn from it.
    """

    def __init__(self, adversary: AdversarialEmbedding, epsilon: float, batches: BatchSource,
                 weight: float = 1.0):
        if len(batches) == 0:
            raise ValueError("virtual adversarial training needs unlabelled reviews; got none")
        self.adversary = adversary
        self.epsilon = epsilon
        self.weight = weight
        self.batches = batches
        self.passes = 0
        self._iterator: Iterator[Batch] | None = None
        self._sum, self._count = 0.0, 0

    def after_backward(self, step: Step) -> None:
        smooth = self.loss(step.model, step.forward, step.device, step.amp_dtype)
        if smooth is not None:
            step.backward(smooth)
            self._sum, self._count = self._sum + float(smooth.detach()), self._count + 1

    def epoch_sums(self) -> dict:
        sums = {"virtual_sum": self._sum, "virtual_count": self._count}
        self._sum, self._count = 0.0, 0
        return sums

    def summarize(self, sums: dict) -> dict:
        count = sums.get("virtual_count", 0)
        return {"virtual_loss": sums["virtual_sum"] / count} if count else {}

    def remove(self) -> None:
        self.adversary.remove()

    def next_batch(self) -> Batch:
        """The next unlabelled batch; reshuffled each time the reviews are used up."""
        while True:
            if self._iterator is None:
                self.batches.set_epoch(self.passes)
                self._iterator = iter(self.batches)
            batch = next(self._iterator, None)
            if batch is not None:
                return batch
            self._iterator, self.passes = None, self.passes + 1

    def loss(self, model: nn.Module, forward: nn.Module | None, device: torch.device,
             amp_dtype: torch.dtype | None) -> torch.Tensor | None:
        """The weighted KL divergence of the pushed prediction from the clean one on the next
        unlabelled batch (None when that batch gave no gradient to push along)."""
        batch = self.next_batch().to(device)
        batch = Batch(batch.inputs, batch.lengths, None, batch.num_tokens)  # labels never used
        with autocast(device, amp_dtype):
            clean = model(batch)  # the bare module: only the embeddings' gradient is taken
        embedded = self.adversary.captured
        logits = clean.logits.float()
        if logits.ndim == 1:
            target = torch.sigmoid(logits).detach()
            own = F.binary_cross_entropy_with_logits(logits, (logits > 0).float())
        else:
            target = torch.softmax(logits, dim=-1).detach()
            own = F.cross_entropy(logits, logits.argmax(-1))
        if embedded is None or not embedded.requires_grad:
            self.adversary.captured = None
            return None
        (gradient,) = torch.autograd.grad(own, embedded)
        if not self.adversary.perturb(gradient, self.epsilon):
            return None
        try:
            with autocast(device, amp_dtype):
                pushed = (forward or model)(batch).logits.float()
        finally:
            self.adversary.clear()
        if pushed.ndim == 1:  # KL(p || q) for Bernoulli p, q
            log_q1, log_q0 = F.logsigmoid(pushed), F.logsigmoid(-pushed)
            log_p1, log_p0 = (torch.log(target.clamp_min(1e-12)),
                              torch.log((1 - target).clamp_min(1e-12)))
            kl = target * (log_p1 - log_q1) + (1 - target) * (log_p0 - log_q0)
            return self.weight * kl.mean()
        return self.weight * F.kl_div(F.log_softmax(pushed, dim=-1), target,
                                      reduction="batchmean")
