"""ELECTRA's replaced-token detection: a generator fills masked positions with *sampled* tokens, a discriminator
labels every real token original or replaced. It learns from all tokens, not only the 15% that are masked.

For a sequence x with a random set M of masked positions (chosen as for masked LM):

    generator    p_G(· | x̃) at t ∈ M                           x̃ = x with [MASK] at (most of) M
    sample       x̂_t ~ p_G(· | x̃) for t ∈ M,  x̂_t = x_t else   (no gradient flows through the sampling)
    label        r_t = 1[x̂_t ≠ x_t]                             (a sample equal to the original is "original")
    loss         L = L_MLM + λ · L_disc,
                 L_MLM  = -(1/|M|) Σ_{t∈M} log p_G(x_t | x̃),    L_disc = (1/N) Σ_{t real} BCE(D(x̂)_t, r_t),

N the number of real (non-padding) tokens and λ = ``disc_weight`` (ELECTRA: 50). Sampling is by inverse CDF
with one uniform per masked position drawn in ``prepare``, so the objective's seed fixes it too.

A step is often split, into micro-batches (gradient accumulation) and across ranks (data parallelism), and its
loss must not depend on the split. The accumulation loop (:mod:`~minipretrain.objectives.accumulation`) divides
every micro-batch's summed loss by the step's |M|, so micro-batch i returns

    L_sum,i = Σ_{t∈M_i} NLL_t + λ · (|M| / N) · Σ_{t real in i} BCE_t,

with |M| and N counted over the *whole step*: then Σ_i L_sum,i / |M| = L exactly, however the windows are
split. Those two counts are :meth:`ReplacedTokenDetection.step_statistics`; the loop asks for them once, from
all the step's prepared batches (every rank prepares the whole step), and passes them to each ``loss`` call.
Without them (one batch scored alone, as evaluation does) the batch is its own step.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..backend import array_module, to_device, to_host
from ..ops.binary_cross_entropy import binary_cross_entropy_with_logits
from ..ops.cross_entropy import IGNORE_INDEX, cross_entropy
from ..ops.softmax import stable_softmax
from .base import Objective, PreparedBatch, Reduction, _REDUCTIONS
from .masked import MaskedLanguageModeling


@dataclass
class ReplacedTokenBatch(PreparedBatch):
    """A masked-LM PreparedBatch plus the ``original_ids`` (B, T) the discriminator is scored against and one
    ``sampling_uniforms`` (B, T) per position for drawing the generator's replacements."""

    original_ids: np.ndarray | None = None
    sampling_uniforms: np.ndarray | None = None


@dataclass(frozen=True)
class StepCounts:
    """A step's masked positions |M| and real (non-padding) tokens N: the denominators of L_MLM and L_disc."""

    num_masked: int
    num_real: int


def sample_by_inverse_cdf(probs: Any, uniforms: Any) -> Any:
    """One draw per row of ``probs`` (N, V): the first id whose cumulative probability exceeds its uniform."""
    xp = array_module(probs)
    cdf = xp.cumsum(probs, axis=-1)
    drawn = (cdf < uniforms[:, None] * cdf[:, -1:]).sum(axis=-1)  # scaled by the total: rounding never loses a row
    return xp.minimum(drawn, probs.shape[-1] - 1)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counted half); None without both classes."""
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


class ReplacedTokenDetection(Objective):
    """ELECTRA's objective (see the module docstring), training an :class:`~minipretrain.models.electra.ELECTRA`.

    Args:
        generator, discriminator: the two halves of one ``ELECTRA`` model (the trainer passes that model to
            ``loss``; its halves must be these).
        tokenizer: gives ``mask_id``, ``vocab_size`` and ``special_ids``.
        mask_prob: the fraction of (non-special, real) tokens masked (ELECTRA: 0.15).
        disc_weight: λ (ELECTRA: 50).
        mask_token_prob, random_token_prob: of the masked ones, how many become [MASK] and how many a random
            token (the rest stay): ELECTRA's code uses 0.85 and 0.
        seed: the objective's own generator, used when ``prepare`` gets no ``rng``.
    """

    name = "rtd"
    model_kind = "electra"
    data_layout = "mlm"  # [CLS] … [SEP] windows with padding, as BERT's
    loss_is_cross_entropy = False  # MLM + λ·BCE: its exp is no perplexity
    #: what ``train`` prints at the end (training/examples.py): (metric, label), and the examples' heading
    shown_metrics = (("mlm_loss", "generator MLM loss"), ("accuracy", "generator MLM accuracy"),
                     ("disc_loss", "discriminator loss"), ("disc_accuracy", "discriminator accuracy"),
                     ("disc_auc", "discriminator AUC"), ("replaced_fraction", "tokens replaced"))
    examples_heading = "[x]: flagged as replaced by the discriminator; *x*: replaced but not flagged"

    @classmethod
    def for_model(cls, model: Any, tokenizer: Any = None, **options: Any) -> ReplacedTokenDetection:
        """The objective for one ``ELECTRA`` pair: its generator and discriminator."""
        for half in ("generator", "discriminator"):
            if not hasattr(model, half):
                raise ValueError(f"ReplacedTokenDetection trains an ELECTRA pair (model.kind 'electra'), but got "
                                 f"{type(model).__name__} of kind {getattr(model, 'kind', None)!r}, which has no "
                                 f"{half}")
        return cls(model.generator, model.discriminator, tokenizer, **options)

    def __init__(self, generator: Any, discriminator: Any, tokenizer: Any, mask_prob: float = 0.15,
                 disc_weight: float = 50.0, mask_token_prob: float = 0.85, random_token_prob: float = 0.0,
                 seed: int | None = 0) -> None:
        for label, value in (("mask_prob", mask_prob), ("mask_token_prob", mask_token_prob),
                             ("random_token_prob", random_token_prob)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"ReplacedTokenDetection: {label} must lie in [0, 1], got {value}")
        if mask_token_prob + random_token_prob > 1.0:
            raise ValueError("ReplacedTokenDetection: mask_token_prob + random_token_prob must be at most 1")
        if disc_weight < 0:
            raise ValueError(f"ReplacedTokenDetection: disc_weight must be non-negative, got {disc_weight}")
        if getattr(generator, "kind", None) != "electra-generator" or \
                getattr(discriminator, "kind", None) != "electra-discriminator":
            raise ValueError("ReplacedTokenDetection needs an ELECTRA generator and discriminator (model.generator, "
                             f"model.discriminator), got {type(generator).__name__} and {type(discriminator).__name__}")
        if tokenizer is None:
            raise ValueError("ReplacedTokenDetection needs a tokenizer (for mask_id, vocab_size and special_ids)")
        self.generator, self.discriminator, self.tokenizer = generator, discriminator, tokenizer
        self.mask_prob, self.disc_weight = float(mask_prob), float(disc_weight)
        self.mask_token_prob, self.random_token_prob = float(mask_token_prob), float(random_token_prob)
        self.mask_id = int(tokenizer.mask_id)
        self.special_ids = np.array(sorted(int(i) for i in tokenizer.special_ids), dtype=np.int64)
        self.replacement_ids = np.setdiff1d(np.arange(int(tokenizer.vocab_size), dtype=np.int64), self.special_ids)
        self.rng = np.random.default_rng(seed)

    def prepare(self, batch: Any, rng: np.random.Generator | None = None) -> ReplacedTokenBatch:
        """Mask as masked LM does (a fresh mask per batch) and draw the sampling uniforms."""
        rng = self.rng if rng is None else rng
        original, attention_mask = self._check_batch(batch)
        special_mask = getattr(batch, "special_tokens_mask", None)
        special_mask = np.zeros(original.shape, bool) if special_mask is None else np.asarray(special_mask, bool)
        candidates = attention_mask & ~special_mask & ~np.isin(original, self.special_ids)
        # The generator's input is masked exactly as masked LM masks (the same draws from the same rng); this
        # objective holds the same settings (mask_prob, mask_token_prob, random_token_prob, mask_id,
        # replacement_ids), so masked LM's one implementation serves both.
        input_ids, labels = MaskedLanguageModeling.mask_tokens(self, original, candidates, rng)
        token_type_ids = getattr(batch, "token_type_ids", None)
        token_type_ids = (np.zeros(original.shape, np.int64) if token_type_ids is None
                          else np.asarray(token_type_ids, dtype=np.int64))
        return ReplacedTokenBatch(input_ids=input_ids, attention_mask=attention_mask.copy(),
                                  labels=labels,
                                  token_type_ids=token_type_ids, original_ids=original.copy(),
                                  sampling_uniforms=rng.random(original.shape))

    def step_statistics(self, prepared: Sequence[PreparedBatch]) -> StepCounts:
        """|M| and N over all of a step's ``prepared`` batches (see the module docstring)."""
        return StepCounts(num_masked=sum(p.num_targets for p in prepared),
                          num_real=sum(int(np.count_nonzero(p.attention_mask)) for p in prepared))

    def replace(self, generator_logits: Any, prepared: ReplacedTokenBatch, device: str) -> tuple[Any, Any]:
        """(the discriminator's input x̂, its labels r) from the generator's logits; no graph is recorded."""
        with no_grad():
            labels = to_device(prepared.labels, device)
            selected = labels != IGNORE_INDEX
            probs = stable_softmax(generator_logits.data[selected].astype(np.float64), axis=-1)
            uniforms = to_device(prepared.sampling_uniforms, device)[selected]
            corrupted = to_device(prepared.original_ids, device).copy()
            corrupted[selected] = sample_by_inverse_cdf(probs, uniforms)
            replaced = corrupted != to_device(prepared.original_ids, device)
        return corrupted, replaced.astype(generator_logits.dtype)

    def loss(self, model: Any, prepared: PreparedBatch, reduction: Reduction = "mean",
             host_metrics: bool = True, step_statistics: StepCounts | None = None) -> tuple[Any, dict[str, Any]]:
        """L_sum,i ("sum"), or L_sum,i / |M| ("mean": L itself when ``prepared`` is the whole step), with |M|
        and N from ``step_statistics`` (default: ``prepared`` alone is the step); metrics of both models
        (``host_metrics=False``: only the generator's ``correct`` and ``num_targets``, left on the device)."""
        if reduction not in _REDUCTIONS:
            raise ValueError(f"ReplacedTokenDetection.loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.check_model(model)
        if model.generator is not self.generator or model.discriminator is not self.discriminator:
            raise ValueError("ReplacedTokenDetection.loss: the model is not the ELECTRA this objective was built for")
        device = getattr(model, "device", "cpu")
        input_ids, attention_mask, labels, types = (to_device(getattr(prepared, name), device) for name in
                                                    ("input_ids", "attention_mask", "labels", "token_type_ids"))
        generator_logits = model.generator(input_ids, attention_mask, types)
        mlm = cross_entropy(generator_logits, labels, reduction="sum")
        corrupted, replaced = self.replace(generator_logits, prepared, device)
        disc_logits = model.discriminator(corrupted, attention_mask, types)
        bce = binary_cross_entropy_with_logits(disc_logits, replaced, mask=attention_mask, reduction="sum")
        step = self.step_statistics([prepared]) if step_statistics is None else step_statistics
        num_masked = max(step.num_masked, 1)
        total = mlm + bce * (self.disc_weight * num_masked / max(step.num_real, 1))  # L_sum,i
        loss = total if reduction == "sum" else total * (1.0 / num_masked)
        if not host_metrics:  # the training step reads the loss and these in one transfer
            return loss, self._metrics(generator_logits, labels, mlm, "sum", host_metrics=False)
        metrics = self._metrics(generator_logits, labels, mlm, "sum")
        metrics["mlm_loss"] = metrics["loss"]
        metrics["loss"] = float(total.item()) / num_masked
        num_real = max(int(np.count_nonzero(prepared.attention_mask)), 1)
        metrics.update(self._discriminator_metrics(disc_logits, replaced, prepared.attention_mask, bce, num_real))
        return loss, metrics

    @staticmethod
    def _discriminator_metrics(logits: Any, replaced: Any, attention_mask: np.ndarray, bce: Any,
                               num_real: int) -> dict[str, float]:
        real = attention_mask.astype(bool)
        scores, truth = to_host(logits.data)[real], to_host(replaced)[real].astype(bool)
        metrics = {"disc_loss": float(bce.item()) / num_real,
                   "disc_accuracy": float(((scores > 0) == truth).mean()) if truth.size else 0.0,
                   "replaced_fraction": float(truth.mean()) if truth.size else 0.0}
        auc = roc_auc(scores, truth)
        if auc is not None:
            metrics["disc_auc"] = auc
        return metrics

    def examples(self, model: Any, batch: Any, count: int = 2, seed: int = 0) -> list[str]:
        """Sentences as the discriminator saw them: [x] marks a token it flags as replaced, *x* one that was
        replaced but not flagged."""
        prepared = self.prepare(batch, np.random.default_rng(seed))
        was_training = model.training
        model.eval()
        try:
            with no_grad():
                device = getattr(model, "device", "cpu")
                ids, mask, types = (to_device(getattr(prepared, n), device) for n in
                                    ("input_ids", "attention_mask", "token_type_ids"))
                corrupted, replaced = self.replace(model.generator(ids, mask, types), prepared, device)
                flagged = to_host(model.discriminator(corrupted, mask, types).data) > 0
        finally:
            model.train(was_training)
        corrupted, replaced = to_host(corrupted), to_host(replaced).astype(bool)
        shown = []
        for row in range(min(count, len(corrupted))):
            pieces = []
            for t in np.flatnonzero(prepared.attention_mask[row]):
                text = self.tokenizer.decode([int(corrupted[row, t])])
                pieces.append(f"[{text}]" if flagged[row, t] else f"*{text}*" if replaced[row, t] else text)
            shown.append("".join(pieces))
        return shown

    def __repr__(self) -> str:
        return f"ReplacedTokenDetection(mask_prob={self.mask_prob}, disc_weight={self.disc_weight})"
