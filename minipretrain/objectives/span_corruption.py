"""T5's span corruption: drop random spans of the input, one sentinel per span, and train an encoder-decoder to
write the dropped spans back, each after its sentinel.

    original  Thank you for inviting me to your party last week .
    inputs    Thank you <X> me to your party <Y> week . </s>
    targets   <X> for inviting <Y> last </s>

Which tokens are dropped is T5's ``random_spans_noise_mask`` (Raffel et al. 2020, t5.data.preprocessors), for a
sequence of n tokens with density d and mean span length μ:

    num_noise = round(n·d) clamped to [1, n-1]          num_spans = max(round(num_noise / μ), 1)      (in float32,
                                                                                                        as T5)
    the noise tokens are cut into num_spans non-empty spans, the n - num_noise others into as many, each at
    a uniformly random set of cut points, and the spans interleave starting with a non-noise one:
        keep₀ noise₀ keep₁ noise₁ … keep_{k-1} noise_{k-1}.

So every sequence of one length gets exactly the same number of noise tokens and spans; only where they fall
is random. Everything is vectorised over the rows of a batch (and over the tokens): the cut points of all
rows come from one (B, n-1) array of uniforms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend import to_device, to_host
from ..models.t5 import shift_right
from ..ops.cross_entropy import IGNORE_INDEX, cross_entropy
from .base import Objective, PreparedBatch, Reduction, _REDUCTIONS


@dataclass
class Seq2SeqPreparedBatch(PreparedBatch):
    """A PreparedBatch for an encoder-decoder: ``input_ids``/``attention_mask`` feed the encoder (B, S); ``labels``
    (B, T) are the targets, and the decoder reads ``decoder_input_ids`` (labels shifted right) under
    ``decoder_attention_mask``. ``num_targets`` counts the labels, as for every objective."""

    decoder_input_ids: np.ndarray | None = None
    decoder_attention_mask: np.ndarray | None = None


def noise_span_counts(length: int, noise_density: float, mean_noise_span_length: float) -> tuple[int, int]:
    """(num_noise_tokens, num_noise_spans) of a length-``length`` sequence, exactly as T5 computes them
    (float32 arithmetic, round half to even, length counted as at least 2)."""
    length = max(int(length), 2)
    num_noise = int(np.round(np.float32(length) * np.float32(noise_density)))
    num_noise = min(max(num_noise, 1), length - 1)
    num_spans = max(int(np.round(np.float32(num_noise) / np.float32(mean_noise_span_length))), 1)
    return num_noise, num_spans


def random_segmentation(num_items: int, num_segments: int, rows: int, rng: np.random.Generator) -> np.ndarray:
    """(rows, num_segments) lengths ≥ 1 that sum to ``num_items``: each row cuts at a uniformly random subset of
    num_segments - 1 of the num_items - 1 gaps (T5 shuffles that many 1s among the gaps; the same law)."""
    if num_segments > num_items:
        raise ValueError(f"cannot cut {num_items} tokens into {num_segments} non-empty spans; lower noise_density "
                         "or raise mean_noise_span_length")
    order = np.argsort(rng.random((rows, num_items - 1)), axis=1)  # a random permutation of the gaps per row
    starts = np.zeros((rows, num_items), dtype=bool)
    starts[np.arange(rows)[:, None], 1 + order[:, :num_segments - 1]] = True
    cuts = np.nonzero(starts)[1].reshape(rows, num_segments - 1)  # row-major, so sorted within each row
    bounds = np.concatenate([np.zeros((rows, 1), np.int64), cuts, np.full((rows, 1), num_items)], axis=1)
    return np.diff(bounds, axis=1)


def random_spans_noise_mask(length: int, rows: int, rng: np.random.Generator, noise_density: float = 0.15,
                            mean_noise_span_length: float = 3.0) -> np.ndarray:
    """(rows, length) bool, True at the noise tokens (T5's ``random_spans_noise_mask``, one draw per row)."""
    padded = max(int(length), 2)
    num_noise, num_spans = noise_span_counts(length, noise_density, mean_noise_span_length)
    # >>> exercise: span-noise-mask
    # The noise lengths of every row first, then the kept lengths (the order fixes the draws), interleaved as
    # keep₀ noise₀ keep₁ noise₁ …; a 1 at each run's start and a running count mod 2 mark the noise runs.
    noise_lengths = random_segmentation(num_noise, num_spans, rows, rng)
    keep_lengths = random_segmentation(padded - num_noise, num_spans, rows, rng)
    interleaved = np.stack([keep_lengths, noise_lengths], axis=2).reshape(rows, 2 * num_spans)
    span_starts = np.cumsum(interleaved, axis=1)[:, :-1]
    indicator = np.zeros((rows, padded), dtype=np.int64)
    indicator[np.arange(rows)[:, None], span_starts] = 1
    is_noise = np.cumsum(indicator, axis=1) % 2 == 1
    # <<< exercise
    return is_noise[:, :length]


def replace_spans(tokens: np.ndarray, spans: np.ndarray, sentinel_ids: np.ndarray) -> np.ndarray:
    """Each run of True in ``spans`` (rows, n) becomes one sentinel (the k-th run of a row gets
    ``sentinel_ids[k]``) and the rest of the run is dropped; every row must keep the same number of tokens."""
    previous = np.concatenate([np.zeros((len(spans), 1), bool), spans[:, :-1]], axis=1)
    first = spans & ~previous
    index = np.cumsum(first, axis=1) - 1
    if first.any() and int(index.max()) >= len(sentinel_ids):
        raise ValueError(f"a sequence has {int(index.max()) + 1} spans but there are only {len(sentinel_ids)} "
                         "sentinels; add more sentinel tokens to the tokenizer")
    replaced = np.where(first, sentinel_ids[np.maximum(index, 0)], tokens)
    kept = ~spans | first
    return replaced[kept].reshape(len(tokens), -1)


class SpanCorruption(Objective):
    """T5's span-corruption objective (see the module docstring) for a :class:`~minipretrain.models.t5.T5`.

    ``prepare`` draws a fresh mask for every batch (dynamic, seeded by ``rng``) and returns a
    :class:`Seq2SeqPreparedBatch`: inputs = the kept tokens with one sentinel per dropped span + EOS, labels =
    each sentinel followed by its span + EOS. The loss is the cross-entropy of the labels (teacher forcing).

    Args:
        model: a T5 (``model.kind == "t5"``).
        tokenizer: must have sentinels (``SentinelTokenizer``), ``eos_id`` and ``pad_id``.
        noise_density, mean_noise_span_length: d and μ (T5: 0.15 and 3).
        num_sentinels: if given, the number of sentinels the tokenizer must have (a config's ``num_sentinels``).
        seed: the objective's own generator, used when ``prepare`` gets no ``rng``.
    """

    name = "span_corruption"
    model_kind = "t5"
    data_layout = "clm"  # contiguous text; T5 adds no [CLS]/[SEP], only the EOS ``prepare`` appends
    #: what ``train`` prints at the end (training/examples.py): (metric, label), and the examples' heading
    shown_metrics = (("loss", "span-reconstruction loss"), ("accuracy", "span-reconstruction accuracy"))
    examples_heading = "corrupted input, target and the model's reconstruction"

    def __init__(self, model: Any, tokenizer: Any, noise_density: float = 0.15, mean_noise_span_length: float = 3.0,
                 seed: int | None = 0, num_sentinels: int | None = None) -> None:
        super().__init__(model)
        if num_sentinels is not None and len(getattr(tokenizer, "sentinel_ids", ())) != int(num_sentinels):
            raise ValueError(f"SpanCorruption: num_sentinels={num_sentinels}, but the tokenizer has "
                             f"{len(getattr(tokenizer, 'sentinel_ids', ()))} sentinels")
        if not 0.0 < float(noise_density) < 1.0:
            raise ValueError(f"SpanCorruption: noise_density must lie in (0, 1), got {noise_density}")
        if float(mean_noise_span_length) < 1.0:
            raise ValueError(f"SpanCorruption: mean_noise_span_length must be at least 1, got {mean_noise_span_length}")
        sentinels = getattr(tokenizer, "sentinel_ids", None)
        if not sentinels:
            raise ValueError("SpanCorruption needs a tokenizer with sentinel tokens <extra_id_k>: wrap it as "
                             "SentinelTokenizer(tokenizer)")
        self.tokenizer = tokenizer
        self.noise_density = float(noise_density)
        self.mean_noise_span_length = float(mean_noise_span_length)
        self.sentinel_ids = np.asarray(sentinels, dtype=np.int64)
        self.eos_id, self.pad_id = int(tokenizer.eos_id), int(tokenizer.pad_id)
        self.rng = np.random.default_rng(seed)

    @classmethod
    def tokenizer_for(cls, tokenizer: Any, num_sentinels: int = 100, **options: Any) -> Any:
        """``tokenizer`` with ``num_sentinels`` sentinels ``<extra_id_k>`` (as it is, if it has them already)."""
        from ..tokenizers.sentinels import SentinelTokenizer

        return tokenizer if getattr(tokenizer, "kind", None) == "sentinels" else SentinelTokenizer(tokenizer,
                                                                                                  int(num_sentinels))

    def corrupt(self, tokens: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For rows of equal length n: (noise mask (B, n), inputs (B, S), targets (B, T)), EOS-terminated."""
        noise = random_spans_noise_mask(tokens.shape[1], len(tokens), rng, self.noise_density,
                                        self.mean_noise_span_length)
        eos = np.full((len(tokens), 1), self.eos_id, dtype=np.int64)
        inputs = np.concatenate([replace_spans(tokens, noise, self.sentinel_ids), eos], axis=1)
        targets = np.concatenate([replace_spans(tokens, ~noise, self.sentinel_ids), eos], axis=1)
        return noise, inputs, targets

    def prepare(self, batch: Any, rng: np.random.Generator | None = None) -> Seq2SeqPreparedBatch:
        """Corrupt every row of ``batch`` (real tokens first, then padding) with a fresh mask.

        Rows of one real length are corrupted together in one vectorised call; rows of different lengths (padded
        batches) are grouped by length and the results padded (pad id, label -100).
        """
        rng = self.rng if rng is None else rng
        ids, attention_mask = self._check_batch(batch)
        lengths = attention_mask.sum(axis=1)
        if not (attention_mask == (np.arange(ids.shape[1])[None, :] < lengths[:, None])).all():
            raise ValueError("SpanCorruption: each row must be its real tokens followed by padding (right padding)")
        groups = [(np.flatnonzero(lengths == n), n) for n in np.unique(lengths)]  # usually one: full windows
        corrupted = [(rows, self.corrupt(ids[rows, :n], rng)) for rows, n in groups]
        width_in = max(inputs.shape[1] for _, (_, inputs, _) in corrupted)
        width_out = max(targets.shape[1] for _, (_, _, targets) in corrupted)
        input_ids = np.full((len(ids), width_in), self.pad_id, dtype=np.int64)
        encoder_mask = np.zeros((len(ids), width_in), dtype=bool)
        labels = np.full((len(ids), width_out), IGNORE_INDEX, dtype=np.int64)
        for rows, (_, inputs, targets) in corrupted:
            input_ids[rows, :inputs.shape[1]] = inputs
            encoder_mask[rows, :inputs.shape[1]] = True
            labels[rows, :targets.shape[1]] = targets
        return Seq2SeqPreparedBatch(
            input_ids=input_ids, attention_mask=encoder_mask, labels=labels,
            decoder_input_ids=shift_right(labels, self.pad_id, self.pad_id),  # T5 starts decoding from the pad id
            decoder_attention_mask=labels != IGNORE_INDEX)

    def loss(self, model: Any, prepared: PreparedBatch, reduction: Reduction = "mean",
             host_metrics: bool = True, step_statistics: Any = None) -> tuple[Any, dict[str, Any]]:
        """Cross-entropy of the targets given the corrupted input (``reduction``, ``host_metrics`` as
        :meth:`Objective.loss`; no ``step_statistics`` needed: every term is per target)."""
        if reduction not in _REDUCTIONS:
            raise ValueError(f"SpanCorruption.loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.check_model(model)
        device = getattr(model, "device", "cpu")
        moved = {name: to_device(getattr(prepared, name), device) for name in
                 ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask", "labels")}
        logits = model(moved["input_ids"], attention_mask=moved["attention_mask"],
                       decoder_input_ids=moved["decoder_input_ids"],
                       decoder_attention_mask=moved["decoder_attention_mask"])
        loss = cross_entropy(logits, moved["labels"], reduction=reduction)
        return loss, self._metrics(logits, moved["labels"], loss, reduction, host_metrics)

    def examples(self, model: Any, batch: Any, count: int = 2, seed: int = 0) -> list[str]:
        """A few corrupted inputs with the model's greedy reconstruction and the true targets, as text."""
        prepared = self.prepare(batch, np.random.default_rng(seed))
        rows = slice(0, count)
        generated = to_host(model.generate(prepared.input_ids[rows], prepared.attention_mask[rows],
                                           max_new_tokens=prepared.labels.shape[1] + 2))  # ids on the model's device
        shown = []
        for i in range(min(count, len(prepared.input_ids))):
            real_input = prepared.input_ids[i][prepared.attention_mask[i]]
            real_target = prepared.labels[i][prepared.labels[i] != IGNORE_INDEX]
            decode = self.tokenizer.decode
            shown.append(f"input:   {decode(real_input.tolist())!r}\n  target:  {decode(real_target.tolist())!r}\n"
                         f"  model:   {decode(generated[i].tolist())!r}")
        return shown

    def __repr__(self) -> str:
        return (f"SpanCorruption(noise_density={self.noise_density}, "
                f"mean_noise_span_length={self.mean_noise_span_length})")
