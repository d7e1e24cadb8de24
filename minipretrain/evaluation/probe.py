"""Linear probes: how much of a task can a *frozen* model's features solve?

Two steps, kept apart so one feature matrix can serve many probes:

1. :func:`extract_features` runs the model under ``no_grad`` over a list of texts (batched, padded) and
   mean-pools the final hidden states over the real, non-special tokens of each text -> (n_texts, width).
   GPT's ``hidden_states`` (after ``ln_f``) and BERT's ``encode`` (after the last post-LN block) are used.
2. :func:`train_probe` fits a multinomial logistic regression on standardised features with the project's
   own engine (Tensors, ``ops.cross_entropy``, full-batch AdamW) and an L2 penalty,

       L(W, b) = -(1/n) Σ_i log softmax(x_i W + b)[y_i] + λ ‖W‖²,

   and reports accuracy on a held-out split. The model is never updated: only W and b are learned, so the
   accuracy measures what the pre-trained representations already make linearly available.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .. import ops
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..backend import to_host


@dataclass
class ProbeResult:
    """Accuracies of one probe (fractions in [0, 1]) and what it was fitted on."""

    train_accuracy: float
    test_accuracy: float
    chance_accuracy: float  # the majority class's share of the test split
    num_classes: int
    num_train: int
    num_test: int
    final_loss: float
    classes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"train_accuracy": self.train_accuracy, "test_accuracy": self.test_accuracy,
                "chance_accuracy": self.chance_accuracy, "num_classes": self.num_classes,
                "num_train": self.num_train, "num_test": self.num_test, "final_loss": self.final_loss}


def _hidden_states(model: Any, input_ids: np.ndarray, attention_mask: np.ndarray) -> Any:
    """Final hidden states (B, T, C) of a GPT (``hidden_states``) or BERT (``encode``)."""
    if hasattr(model, "encode"):
        return model.encode(input_ids, attention_mask=attention_mask)
    if hasattr(model, "hidden_states"):
        return model.hidden_states(input_ids, attention_mask=attention_mask)
    raise TypeError(f"{type(model).__name__} has neither encode() nor hidden_states(); cannot extract features")


def is_bracketed(kind: str) -> bool:
    """Whether models of ``kind`` pre-train on ``[CLS] … [SEP]`` windows: an objective with the "mlm" data layout
    trains that kind, or the pair it is half of (``electra-discriminator`` is half of ``electra``)."""
    from ..objectives import OBJECTIVES

    trained_bracketed = {cls.model_kind for cls in OBJECTIVES.values() if cls.data_layout == "mlm"}
    return kind in trained_bracketed or kind.split("-")[0] in trained_bracketed


def encode_texts(tokenizer: Any, texts: Sequence[str], max_len: int, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token ids (n, max_len), attention mask and pooling mask for ``texts``, as the model was trained.

    BERT and ELECTRA (:func:`is_bracketed`) read ``[CLS] tokens [SEP]``; GPT reads the bare tokens. Texts longer
    than the window are cut. The pooling mask is True at real, non-special tokens (what the features average over).
    """
    bracketed = is_bracketed(kind)
    special = 2 if bracketed else 0
    content_len = max_len - special
    ids = np.full((len(texts), max_len), tokenizer.pad_id, dtype=np.int64)
    pool = np.zeros((len(texts), max_len), dtype=bool)
    attention = np.zeros((len(texts), max_len), dtype=bool)
    for row, text in enumerate(texts):
        tokens = tokenizer.encode(text)[:content_len] or [tokenizer.pad_id]
        if bracketed:
            sequence = [tokenizer.cls_id, *tokens, tokenizer.sep_id]
            offset = 1
        else:
            sequence, offset = tokens, 0
        ids[row, :len(sequence)] = sequence
        attention[row, :len(sequence)] = True
        pool[row, offset:offset + len(tokens)] = True
    return ids, attention, pool


def extract_features(model: Any, tokenizer: Any, texts: Sequence[str], max_len: int | None = None,
                     batch_size: int = 64) -> np.ndarray:
    """Mean-pooled final hidden states of ``texts`` -> float64 array (n_texts, width), model left unchanged.

    Args:
        model: a GPT or BERT (``model.kind``); put in eval mode for the extraction and restored after.
        tokenizer: the tokenizer the model was trained with.
        texts: the inputs; each is cut to ``max_len`` tokens (default the model's ``block_size``).
        batch_size: texts per forward pass.
    """
    kind = getattr(model, "kind", "gpt")
    max_len = int(max_len or model.block_size)
    was_training = getattr(model, "training", False)
    model.eval()
    pooled: list[np.ndarray] = []
    try:
        with no_grad():
            for first in range(0, len(texts), batch_size):
                ids, attention, pool = encode_texts(tokenizer, texts[first:first + batch_size], max_len, kind)
                # Trim the batch to its longest text: padding columns cost time and change nothing.
                width = int(attention.sum(axis=1).max())
                hidden = to_host(_hidden_states(model, ids[:, :width], attention[:, :width]).data)
                weights = pool[:, :width, None].astype(np.float64)
                pooled.append((hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0))
    finally:
        if was_training:
            model.train()
    return np.concatenate(pooled, axis=0) if pooled else np.zeros((0, 0))


def _label_ids(labels: Sequence[Any], classes: list[Any]) -> np.ndarray:
    index = {label: i for i, label in enumerate(classes)}
    return np.array([index[label] for label in labels], dtype=np.int64)


def train_probe(train_features: np.ndarray, train_labels: Sequence[Any], test_features: np.ndarray,
                test_labels: Sequence[Any], l2: float = 1e-3, steps: int = 300, learning_rate: float = 0.05,
                seed: int = 0) -> ProbeResult:
    """Fit an L2-regularised multinomial logistic regression on frozen features; score the held-out split.

    Features are standardised with the *training* split's mean and standard deviation. W starts at small
    seeded Gaussian values, b at zero; ``steps`` full-batch AdamW updates minimise the loss in the module
    docstring (the L2 term is a plain penalty on W, not decoupled decay, so it is the textbook objective).
    Labels may be any hashable values; classes seen only in the test split count as errors.
    """
    from ..optim import AdamW

    train_features = np.asarray(train_features, dtype=np.float64)
    test_features = np.asarray(test_features, dtype=np.float64)
    if train_features.ndim != 2 or test_features.ndim != 2 or train_features.shape[1] != test_features.shape[1]:
        raise ValueError(f"train_probe: features must be 2-D with equal widths, got {train_features.shape} "
                         f"and {test_features.shape}")
    if len(train_features) != len(train_labels) or len(test_features) != len(test_labels):
        raise ValueError("train_probe: one label per feature row is needed")
    classes = sorted(set(train_labels), key=str)
    if len(classes) < 2:
        raise ValueError("train_probe: the training split needs at least two classes")
    mean = train_features.mean(axis=0)
    std = train_features.std(axis=0) + 1e-8
    x_train = ((train_features - mean) / std).astype(np.float32)
    x_test = ((test_features - mean) / std).astype(np.float32)
    y_train = _label_ids(train_labels, classes)
    known = set(classes)
    # A test label unseen in training can never be predicted: give it an id no logit has.
    y_test = np.array([classes.index(label) if label in known else -1 for label in test_labels], dtype=np.int64)

    rng = np.random.default_rng(seed)
    width, num_classes = x_train.shape[1], len(classes)
    weight = Tensor(rng.normal(0.0, 0.01, size=(width, num_classes)).astype(np.float32), requires_grad=True)
    bias = Tensor(np.zeros(num_classes, dtype=np.float32), requires_grad=True)
    optimizer = AdamW([weight, bias], lr=learning_rate, weight_decay=0.0)
    inputs = Tensor(x_train)
    loss_value = float("nan")
    for _ in range(steps):
        optimizer.zero_grad()
        logits = ops.matmul(inputs, weight) + bias
        loss = ops.cross_entropy(logits, y_train) + ops.sum(weight * weight) * l2
        loss.backward()
        optimizer.step()
        loss_value = float(loss.item())

    def accuracy(x: np.ndarray, y: np.ndarray) -> float:
        predictions = np.argmax(x @ to_host(weight.data) + to_host(bias.data), axis=1)
        return float(np.mean(predictions == y)) if len(y) else float("nan")

    test_counts = np.bincount(y_test[y_test >= 0], minlength=num_classes) if len(y_test) else np.zeros(1)
    return ProbeResult(
        train_accuracy=accuracy(x_train, y_train), test_accuracy=accuracy(x_test, y_test),
        chance_accuracy=float(test_counts.max() / max(len(y_test), 1)), num_classes=num_classes,
        num_train=len(y_train), num_test=len(y_test), final_loss=loss_value, classes=[str(c) for c in classes],
    )


def probe_model(model: Any, tokenizer: Any, train_texts: Sequence[str], train_labels: Sequence[Any],
                test_texts: Sequence[str], test_labels: Sequence[Any], max_len: int | None = None,
                seed: int = 0, **probe_options: Any) -> ProbeResult:
    """Features of both splits from the frozen ``model``, then :func:`train_probe` on them."""
    train_features = extract_features(model, tokenizer, train_texts, max_len)
    test_features = extract_features(model, tokenizer, test_texts, max_len)
    return train_probe(train_features, train_labels, test_features, test_labels, seed=seed, **probe_options)
