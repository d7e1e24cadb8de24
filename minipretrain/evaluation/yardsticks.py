"""Yardsticks: what counting and compressing reach on the same split, so a neural LM's loss has a scale.

A neural language model earns its keep only where it beats models that just *count*. This module fits
count models on a training id array and scores every token of an evaluation id array, in nats per token:

* **add-k n-grams** (unigram, bigram, trigram): ``P(w | h) = (c(h w) + k) / (c(h) + k V)``; an unseen
  context gets the uniform ``1 / V``;
* **interpolated Witten-Bell** (Witten & Bell 1991; Chen & Goodman 1998, eq. 16): each order mixes its
  maximum-likelihood estimate with the order below, trusting a context more the fewer distinct
  continuations it has been seen with::

      P_m(w | h) = (c(h w) + T(h) P_{m-1}(w | h')) / (c(h) + T(h))     T(h) = #{w : c(h w) > 0}

* **interpolated Kneser-Ney** (Kneser & Ney 1995; Chen & Goodman 1998, eq. 17) with one discount per order,
  ``D_m = n1 / (n1 + 2 n2)`` (n1, n2: how many m-grams have count 1 and 2), floored at ``MIN_DISCOUNT``;
  orders below the highest count *continuations* ``N1+(. h w)`` (in how many distinct left contexts the
  m-gram occurs) instead of occurrences::

      P_m(w | h) = max(c(h w) - D_m, 0) / c(h) + D_m T(h) / c(h) P_{m-1}(w | h')

Both smoothed models bottom out in an explicit **uniform base distribution** ``P_0(w) = 1 / V`` over the
vocabulary the caller gives (``vocab_size``), so a token never seen in training still gets a probability
and every distribution sums to 1 over the whole vocabulary. A context never seen in training (``c(h) = 0``)
leaves the lower-order distribution unchanged. The first tokens of the evaluation array have fewer than
``order - 1`` predecessors: they are scored with the order their history allows.

**Compressors** are the other honest yardstick: the conditional code length of the evaluation text given
the training text, ``len(C(train + eval)) - len(C(train))`` bytes (bz2 compresses in independent 900 kB
blocks, so it sees at most that much of the training text; lzma's 64 MiB dictionary sees all of it).

**Bits per byte** makes tokenizers comparable: total nats / UTF-8 bytes of the evaluated text / ln 2.

Everything is vectorised: an m-gram is one int64 key (its ids as a base-V number), counts come from
``np.unique``, look-ups from ``np.searchsorted``; the only Python loop runs over the orders.
"""
from __future__ import annotations

import bz2
import lzma
import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SMOOTHINGS = ("add_k", "witten_bell", "kneser_ney")
MIN_DISCOUNT = 0.1  # keeps probability mass for unseen tokens when a corpus has no singletons
COMPRESSORS = {
    "bz2": lambda data: bz2.compress(data, compresslevel=9),
    "lzma": lambda data: lzma.compress(data, preset=9 | lzma.PRESET_EXTREME),
}


def _as_ids(ids: Any, vocab_size: int, what: str) -> np.ndarray:
    """``ids`` as a 1-D int64 array of ids in 0..vocab_size-1, or a clear error."""
    array = np.asarray(ids)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of token ids, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{what} must hold integer token ids, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= vocab_size):
        bad = int(array.min()) if array.min() < 0 else int(array.max())
        raise ValueError(f"{what} holds id {bad}, outside the vocabulary 0..{vocab_size - 1}; "
                         f"give the tokenizer's vocab_size")
    return array


def _keys(grams: np.ndarray, vocab_size: int) -> np.ndarray:
    """(N, m) id windows -> (N,) int64 keys, the ids read as a base-``vocab_size`` number (oldest first)."""
    keys = np.zeros(grams.shape[0], dtype=np.int64)
    for column in range(grams.shape[1]):
        keys = keys * vocab_size + grams[:, column]
    return keys


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``values`` at each query's position in ``sorted_keys``; 0 where the query is absent."""
    if sorted_keys.size == 0:
        return np.zeros(queries.shape, dtype=values.dtype)
    index = np.minimum(np.searchsorted(sorted_keys, queries), sorted_keys.size - 1)
    return np.where(sorted_keys[index] == queries, values[index], 0)


@dataclass
class _OrderTable:
    """The counts of one order m: m-gram keys and counts, and per context h its total c(h) and types T(h)."""

    gram_keys: np.ndarray
    gram_counts: np.ndarray
    context_keys: np.ndarray
    context_totals: np.ndarray
    context_types: np.ndarray
    discount: float = 0.0

    @classmethod
    def from_counts(cls, gram_keys: np.ndarray, gram_counts: np.ndarray, vocab_size: int) -> "_OrderTable":
        # Keys are sorted, so the contexts (key // V) are sorted too and each one's m-grams are contiguous.
        contexts, first, types = np.unique(gram_keys // vocab_size, return_index=True, return_counts=True)
        totals = np.add.reduceat(gram_counts, first) if gram_keys.size else np.zeros(0)
        return cls(gram_keys, gram_counts, contexts, totals.astype(np.float64), types.astype(np.float64))


@dataclass
class NGramModel:
    """A count language model of ``order`` over ids ``0..vocab_size-1`` (see the module docstring).

    ``fit(train_ids)``, then ``log_prob(ids)`` (per token), ``nll(ids)`` (mean nats per token) or
    ``distribution(contexts)`` (the whole next-token distribution after each context).
    """

    order: int
    vocab_size: int
    smoothing: str = "witten_bell"
    add_k: float = 1.0
    tables: list[_OrderTable] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {self.smoothing!r}")
        if not isinstance(self.order, (int, np.integer)) or self.order < 1:
            raise ValueError(f"order must be an integer >= 1, got {self.order!r}")
        if not isinstance(self.vocab_size, (int, np.integer)) or self.vocab_size < 1:
            raise ValueError(f"vocab_size must be an integer >= 1, got {self.vocab_size!r}")
        if int(self.vocab_size) ** int(self.order) >= 2 ** 63:
            largest = int(62.99 / math.log2(max(self.vocab_size, 2)))
            raise ValueError(f"an order-{self.order} key over {self.vocab_size} ids does not fit in int64; "
                             f"use order <= {largest} for this vocabulary")
        if self.smoothing == "add_k" and not self.add_k > 0:
            raise ValueError(f"add_k must be > 0 (it is what gives unseen events a probability), got {self.add_k}")

    @property
    def name(self) -> str:
        """E.g. ``witten_bell 5-gram``."""
        label = f"add-{self.add_k:g}" if self.smoothing == "add_k" else self.smoothing.replace("_", "-")
        return f"{label} {self.order}-gram"

    # ----- fitting ----------------------------------------------------------------------------------
    def fit(self, train_ids: Any) -> "NGramModel":
        """Count every m-gram (m = 1..order) of ``train_ids``; returns self."""
        train = _as_ids(train_ids, self.vocab_size, "train_ids")
        if train.size < self.order:
            raise ValueError(f"train_ids has {train.size} tokens, fewer than the order {self.order}: "
                             f"an order-{self.order} model needs at least one {self.order}-gram to count")
        raw = []
        for m in range(1, self.order + 1):
            keys, counts = np.unique(_keys(sliding_window_view(train, m), self.vocab_size), return_counts=True)
            raw.append((keys, counts.astype(np.float64)))
        self.tables = []
        for m in range(1, self.order + 1):
            keys, counts = raw[m - 1]
            if self.smoothing == "kneser_ney" and m < self.order:
                # Continuation count N1+(. g): the distinct (m+1)-grams that end in the m-gram g.
                longer_keys = raw[m][0]
                keys, counts = np.unique(longer_keys % self.vocab_size ** m, return_counts=True)
                counts = counts.astype(np.float64)
            table = _OrderTable.from_counts(keys, counts, self.vocab_size)
            if self.smoothing == "kneser_ney":
                singletons, doubletons = np.sum(counts == 1), np.sum(counts == 2)
                estimate = singletons / (singletons + 2 * doubletons) if singletons + doubletons else 0.0
                table.discount = float(max(estimate, MIN_DISCOUNT))
            self.tables.append(table)
        return self

    # ----- scoring ----------------------------------------------------------------------------------
    def _probabilities(self, windows: np.ndarray, history: np.ndarray) -> np.ndarray:
        """P(last id of each window | the ``history`` real ids before it) for (N, order) ``windows``."""
        if not self.tables:
            raise RuntimeError("this NGramModel is not fitted yet: call fit(train_ids) first")
        V = self.vocab_size
        probability = np.full(windows.shape[0], 1.0 / V)  # P_0: the uniform base distribution
        for m, table in enumerate(self.tables, start=1):
            keys = _keys(windows[:, self.order - m:], V)
            count = _lookup(table.gram_keys, table.gram_counts, keys)
            total = _lookup(table.context_keys, table.context_totals, keys // V)
            types = _lookup(table.context_keys, table.context_types, keys // V)
            usable = history >= m - 1
            seen = usable & (total > 0)
            safe_total = np.where(seen, total, 1.0)
            if self.smoothing == "add_k":
                # Each order replaces the one below; an unseen context gives k / (k V) = 1 / V.
                estimate = (count + self.add_k) / (total + self.add_k * V)
                probability = np.where(usable, estimate, probability)
                continue
            if self.smoothing == "witten_bell":
                estimate = (count + types * probability) / (safe_total + types)
            else:
                discount = table.discount
                estimate = (np.maximum(count - discount, 0.0) + discount * types * probability) / safe_total
            probability = np.where(seen, estimate, probability)
        return probability

    def log_prob(self, ids: Any) -> np.ndarray:
        """log P(ids[t] | ids[t-order+1 : t]) for every t (shorter histories at the start), in nats."""
        tokens = _as_ids(ids, self.vocab_size, "ids")
        if tokens.size == 0:
            raise ValueError("ids is empty: give at least one token to score")
        padded = np.concatenate([np.zeros(self.order - 1, dtype=np.int64), tokens])
        windows = sliding_window_view(padded, self.order)
        history = np.minimum(np.arange(tokens.size), self.order - 1)
        return np.log(self._probabilities(windows, history))

    def nll(self, ids: Any) -> float:
        """Mean negative log-likelihood of ``ids`` in nats per token."""
        return float(-self.log_prob(ids).mean())

    def distribution(self, contexts: Any) -> np.ndarray:
        """(N, vocab_size) next-token distributions after each row of ``contexts`` (N, L) (its last order-1 ids
        count; L may be 0 or shorter than order-1). Every row sums to 1."""
        rows = np.asarray(contexts)
        if rows.ndim == 1:
            rows = rows[None, :]
        if rows.ndim != 2:
            raise ValueError(f"contexts must be (N, L) token ids, got shape {rows.shape}")
        flat = _as_ids(rows.reshape(-1), self.vocab_size, "contexts").reshape(rows.shape)
        length = min(rows.shape[1], self.order - 1)
        window_history = np.zeros((rows.shape[0], self.order - 1), dtype=np.int64)
        if length:
            window_history[:, self.order - 1 - length:] = flat[:, rows.shape[1] - length:]
        V = self.vocab_size
        windows = np.concatenate([np.repeat(window_history, V, axis=0), np.tile(np.arange(V), rows.shape[0])[:, None]],
                                 axis=1)
        probabilities = self._probabilities(windows, np.full(windows.shape[0], length))
        return probabilities.reshape(rows.shape[0], V)


# ----- compressors and units ------------------------------------------------------------------------
def _as_bytes(text: Union[str, bytes]) -> bytes:
    return text.encode("utf-8") if isinstance(text, str) else bytes(text)


def conditional_code_length_bits(train_text: Union[str, bytes], eval_text: Union[str, bytes], compressor: str) -> int:
    """Bits the compressor spends on ``eval_text`` after ``train_text``: 8 (len C(train+eval) - len C(train))."""
    if compressor not in COMPRESSORS:
        raise ValueError(f"compressor must be one of {sorted(COMPRESSORS)}, got {compressor!r}")
    compress = COMPRESSORS[compressor]
    train, evaluation = _as_bytes(train_text), _as_bytes(eval_text)
    if not evaluation:
        raise ValueError("eval_text is empty: there is nothing to code")
    return 8 * (len(compress(train + evaluation)) - len(compress(train)))


def bits_per_byte(total_nats: float, num_bytes: int) -> float:
    """Total nats over a text -> bits per UTF-8 byte of that text (comparable across tokenizers)."""
    if num_bytes <= 0:
        raise ValueError(f"num_bytes must be > 0, got {num_bytes}")
    return total_nats / num_bytes / math.log(2)


# ----- the table ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Yardstick:
    """One line of the table: a baseline's loss on the evaluation split."""

    name: str
    nats_per_token: float
    bits_per_byte: float


DEFAULT_MODELS = (("witten_bell", 1), ("witten_bell", 2), ("witten_bell", 3), ("witten_bell", 5),
                  ("kneser_ney", 5))


def yardstick_table(train_ids: Any, eval_ids: Any, vocab_size: int, train_text: Union[str, bytes],
                    eval_text: Union[str, bytes], models: Sequence[tuple[str, int]] = DEFAULT_MODELS,
                    compressors: Sequence[str] = ("bz2", "lzma")) -> list[Yardstick]:
    """Every yardstick on the whole evaluation split: ``models`` as (smoothing, order), then ``compressors``.

    ``eval_text`` must be the text whose tokens are ``eval_ids`` (its UTF-8 bytes are the bits-per-byte
    denominator); ``train_text`` the text of ``train_ids`` (the compressors' context).
    """
    evaluation = _as_ids(eval_ids, vocab_size, "eval_ids")
    if evaluation.size == 0:
        raise ValueError("eval_ids is empty: give the evaluation split's token ids")
    num_bytes = len(_as_bytes(eval_text))
    rows = []
    for smoothing, order in models:
        model = NGramModel(order, vocab_size, smoothing).fit(train_ids)
        total = -float(model.log_prob(evaluation).sum())
        rows.append(Yardstick(model.name, total / evaluation.size, bits_per_byte(total, num_bytes)))
    for compressor in compressors:
        total = conditional_code_length_bits(train_text, eval_text, compressor) * math.log(2)
        rows.append(Yardstick(f"{compressor} | train", total / evaluation.size, bits_per_byte(total, num_bytes)))
    return rows


def format_table(rows: Sequence[Yardstick], model_loss: Optional[float] = None) -> str:
    """The yardsticks as an aligned text table; ``model_loss`` (nats per token) adds a row for comparison."""
    entries = [(row.name, row.nats_per_token, row.bits_per_byte) for row in rows]
    if model_loss is not None and rows:
        # bits per byte scales with nats per token by the same bytes-per-token ratio for every row
        ratio = rows[0].bits_per_byte / rows[0].nats_per_token
        entries.append(("this model", model_loss, model_loss * ratio))
    width = max([len("yardstick")] + [len(name) for name, _, _ in entries])
    lines = [f"{'yardstick':<{width}}  nats/token  bits/byte"]
    lines += [f"{name:<{width}}  {nats:10.4f}  {bits:9.4f}" for name, nats, bits in entries]
    return "\n".join(lines)


def corpus_yardsticks(config: dict[str, Any], **options: Any) -> list[Yardstick]:
    """The yardstick table for a run config's train and validation splits, tokenised as the run sees them.

    Builds the tokenizer and datasets through :mod:`minipretrain.training.recipe` (same split, same ids).
    Documents are joined by ``eos_id`` in the token stream and by one newline in the text.
    """
    from ..training.recipe import build_datasets, build_tokenizer

    tokenizer = build_tokenizer(config["data"])
    train, validation = build_datasets(config["data"], tokenizer, "clm")
    texts = ["\n".join(dataset.source.documents()) for dataset in (train, validation)]
    return yardstick_table(np.asarray(train.tokens), np.asarray(validation.tokens), tokenizer.vocab_size,
                           texts[0], texts[1], **options)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m minipretrain.evaluation.yardsticks --config configs/baby_gpt_char.toml``."""
    import argparse

    from ..training.config import load_config

    parser = argparse.ArgumentParser(description="n-gram and compressor yardsticks on a config's validation split")
    parser.add_argument("--config", required=True, help="a run config (configs/*.toml)")
    arguments = parser.parse_args(argv)
    print(format_table(corpus_yardsticks(load_config(arguments.config))))


if __name__ == "__main__":
    main()
