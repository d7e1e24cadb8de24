"""What every pre-training objective shares: turn a batch of text into (inputs, labels), then score the model.

An objective answers two questions, kept apart on purpose:

1. ``prepare(batch, rng)`` — *what should the model predict?* It works on host NumPy arrays only and returns
   a :class:`PreparedBatch`: the ids the model reads, and ``labels`` holding the id to predict at each position
   (``-100``, :data:`IGNORE_INDEX`, where there is nothing to predict). It draws all its randomness from
   ``rng``, so a seed fixes every mask.
2. ``loss(model, prepared, reduction)`` — *how wrong is it?* It runs the model on the host ids (the ops check
   their range on the host and move them to the model's device) and returns the cross-entropy over the
   labelled positions,

       L_sum  = Σ_{(b,t): y_bt ≠ -100}  −log softmax(z_bt)[y_bt],      L_mean = L_sum / N,

   with N = ``prepared.num_targets``, plus a few metrics as Python floats.

Why two steps: gradient accumulation over k micro-batches must weight every *target token* equally. With
masked LM the micro-batches hold different numbers of targets N_i, and the mean of per-micro-batch means is
not the full batch's mean. The right recipe (see :func:`~minipretrain.objectives.accumulate_gradients`) is
to prepare every micro-batch first, add up N = Σ N_i, and back-propagate ``L_sum,i / N`` for each.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from ..autograd.grad_mode import no_grad
from ..backend import array_module, to_device, to_host
from ..errors import ModelKindError
from ..ops.cross_entropy import IGNORE_INDEX, cross_entropy

Reduction = Literal["mean", "sum"]
_REDUCTIONS = ("mean", "sum")


@dataclass
class PreparedBatch:
    """One batch ready for the model: host NumPy arrays, each (B, T).

    Attributes:
        input_ids: int64 ids the model reads (for MLM: after masking).
        attention_mask: bool, True at real tokens, False at padding.
        labels: int64 id to predict at each position, ``-100`` where nothing is predicted.
        token_type_ids: int64 segment ids for BERT-style models, or None.
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    labels: np.ndarray
    token_type_ids: np.ndarray | None = None

    @property
    def num_targets(self) -> int:
        """Number of positions with a label (``labels != -100``): the denominator of the mean loss."""
        return int(np.count_nonzero(self.labels != IGNORE_INDEX))

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.input_ids.shape)  # type: ignore[return-value]


def _model_kind(model: Any) -> str | None:
    return getattr(model, "kind", None)


class Objective(ABC):
    """Base class of the pre-training objectives (causal LM, masked LM).

    Subclasses set :attr:`name` ("clm", "mlm"), :attr:`model_kind` (the ``model.kind`` they train:
    "gpt", "bert") and implement :meth:`prepare`. :meth:`loss` and :meth:`__call__` are shared.
    """

    name: ClassVar[str] = ""
    model_kind: ClassVar[str] = ""
    #: How ``PretrainingDataset`` cuts windows for it: "clm" (a contiguous token stream, seq_len + 1 tokens)
    #: or "mlm" (``[CLS] … [SEP]`` with padding). A new objective picks the layout its ``prepare`` expects.
    data_layout: ClassVar[str] = "clm"
    #: Whether ``loss`` is a mean token cross-entropy (so exp(loss) is a perplexity); ELECTRA's is not.
    loss_is_cross_entropy: ClassVar[bool] = True

    def __init__(self, model: Any) -> None:
        self.check_model(model)  # the model is checked, not kept: ``loss`` is given the model it scores

    @classmethod
    def for_model(cls, model: Any, tokenizer: Any = None, **options: Any) -> Objective:
        """The objective for ``model`` (what ``make_objective`` calls); an objective that drives parts of the
        model (ELECTRA's generator and discriminator) overrides this to pick them."""
        return cls(model, tokenizer, **options)

    @classmethod
    def tokenizer_for(cls, tokenizer: Any, **options: Any) -> Any:
        """The tokenizer a run of this objective uses, given the data's and the ``[objective]`` options: the same
        one, unless the objective needs tokens of its own (span corruption's sentinels)."""
        return tokenizer

    # ----------------------------------------------------------------- the two steps
    def step_statistics(self, prepared: Sequence[PreparedBatch]) -> Any:
        """Counts over a whole step's prepared batches that :meth:`loss` needs to weight its terms; None here.

        The accumulation loop divides every summed loss by the step's target count, which is all a token
        cross-entropy needs. An objective whose loss has a term normalised by another count (ELECTRA's BCE over
        the real tokens) returns those counts; the loop computes them once from *all* the step's batches (every
        rank prepares the whole step) and passes them to each ``loss(..., step_statistics=...)`` call, so the
        step's loss does not depend on how its windows are split between micro-batches or ranks.
        """
        return None

    @abstractmethod
    def prepare(self, batch: Any, rng: np.random.Generator | None = None) -> PreparedBatch:
        """Build model inputs and labels from a data ``Batch`` (host arrays), drawing randomness from ``rng``."""

    def loss(self, model: Any, prepared: PreparedBatch, reduction: Reduction = "mean",
             host_metrics: bool = True, step_statistics: Any = None) -> tuple[Any, dict[str, Any]]:
        """Cross-entropy of ``model`` on the labelled positions of ``prepared``.

        Args:
            model: a model of kind :attr:`model_kind`; called as
                ``model(input_ids, attention_mask=..., [token_type_ids=...])`` and returning logits (B, T, V).
            prepared: the output of :meth:`prepare`.
            reduction: "mean" — L_sum / N (0 when N = 0); "sum" — L_sum, for token-weighted accumulation.
            host_metrics: False leaves the metrics on the device, as ``{"correct": 0-d array, "num_targets"}``,
                so a training step can read everything in one transfer (each read waits for the GPU).
            step_statistics: what :meth:`step_statistics` returned for the step ``prepared`` belongs to (unused
                by cross-entropy; None: ``prepared`` is the whole step).

        Returns:
            ``(loss, metrics)``: ``loss`` is a scalar Tensor to call ``backward()`` on; ``metrics`` holds
            ``loss`` (always the *mean* per target, whatever ``reduction``), ``accuracy`` (fraction of targets
            whose arg-max prediction is right; for MLM this is the masked-token accuracy) and ``num_targets``.
            To combine metrics of several micro-batches, weight each by its ``num_targets``.
        """
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}.loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.check_model(model)
        # Ids and labels go in as host arrays: the embedding and the loss check their range on the host (free;
        # on the device each check would wait for the GPU) and move them. The mask has nothing to check.
        device = getattr(model, "device", "cpu")
        input_ids, labels = prepared.input_ids, prepared.labels
        attention_mask = to_device(prepared.attention_mask, device)
        extra = {}
        if prepared.token_type_ids is not None:
            extra["token_type_ids"] = prepared.token_type_ids
        logits = model(input_ids, attention_mask=attention_mask, **extra)
        loss = cross_entropy(logits, labels, reduction=reduction)
        metrics = self._metrics(logits, labels, loss, reduction, host_metrics)
        return loss, metrics

    def __call__(self, model: Any, batch: Any, rng: np.random.Generator | None = None) -> tuple[Any, dict[str, float]]:
        """``prepare`` then ``loss`` with mean reduction: the one-call form for a step without accumulation."""
        return self.loss(model, self.prepare(batch, rng), reduction="mean")

    # ----------------------------------------------------------------- helpers
    @staticmethod
    def _metrics(logits: Any, labels: Any, loss: Any, reduction: str, host_metrics: bool = True) -> dict[str, Any]:
        with no_grad():
            xp = array_module(logits.data)
            num_targets = int((to_host(labels) != IGNORE_INDEX).sum())  # host labels: no sync
            device_labels = xp.asarray(labels)
            predictions = xp.argmax(logits.data, axis=-1)
            correct = ((predictions == device_labels) & (device_labels != IGNORE_INDEX)).sum()
        if not host_metrics:  # the caller reads ``correct`` (a device scalar) and the loss when it chooses
            return {"correct": correct, "num_targets": float(num_targets)}
        total = loss.item()
        denominator = max(num_targets, 1)
        mean_loss = total / denominator if reduction == "sum" else total
        return {"loss": float(mean_loss), "accuracy": int(correct) / denominator, "num_targets": float(num_targets)}

    def check_model(self, model: Any) -> None:
        """Refuse a model of another kind than :attr:`model_kind`, with what goes with what."""
        kind = _model_kind(model)
        if kind != self.model_kind:
            raise ModelKindError(
                f"{type(self).__name__} ({self.name!r}) trains a {self.model_kind!r} model, but got "
                f"{type(model).__name__} of kind {kind!r}. Causal LM goes with GPT, masked LM with BERT."
            )

    @staticmethod
    def _check_batch(batch: Any, min_length: int = 1) -> tuple[np.ndarray, np.ndarray]:
        input_ids = np.asarray(batch.input_ids)
        attention_mask = getattr(batch, "attention_mask", None)
        attention_mask = np.ones(input_ids.shape, dtype=bool) if attention_mask is None else np.asarray(attention_mask)
        if input_ids.ndim != 2:
            raise ValueError(f"batch.input_ids must be 2-D (batch, length), got shape {input_ids.shape}")
        if input_ids.dtype.kind not in "iu":
            raise TypeError(f"batch.input_ids must be integer ids, got dtype {input_ids.dtype}")
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"batch.attention_mask has shape {attention_mask.shape}, input_ids {input_ids.shape}; they must match"
            )
        if input_ids.shape[1] < min_length:
            raise ValueError(f"sequences must have at least {min_length} tokens, got length {input_ids.shape[1]}")
        return input_ids.astype(np.int64, copy=False), attention_mask.astype(bool, copy=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, model_kind={self.model_kind!r})"
