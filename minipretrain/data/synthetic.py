"""A synthetic corpus with a known answer: a random k-th order Markov chain over a small alphabet.

Each of the ``alphabet_size ** order`` contexts gets a next-symbol distribution drawn from a symmetric
Dirichlet(``concentration``): small concentrations give peaked, predictable text; large ones give nearly
uniform, unpredictable text. Because the source is known exactly, so is the best achievable loss: the
entropy rate

    H = sum over contexts c of  pi(c) * H(P(. | c))      [nats per token],

where ``pi`` is the stationary distribution of the chain on contexts. A model's validation loss (in nats,
per character with :class:`~minipretrain.tokenizers.CharTokenizer`) can only approach H from above, so
experiments have a ground-truth irreducible loss. Masked-token prediction has its own exact floor,
H(X_t | the k symbols on each side) (:meth:`MarkovCorpus.two_sided_entropy`), at most H because the
right-hand neighbours are informative. Everything is fixed by ``seed``.

Documents start in a context drawn from ``pi``, so every position is a draw from the stationary process.
The symbols are rendered as the first ``alphabet_size`` lowercase letters; a CharTokenizer trained on
enough of the text therefore maps symbol ``i`` to id ``i``.
"""
from __future__ import annotations

import bisect
import string
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

_MAX_CONTEXTS = 1 << 20
_MAX_WINDOW_ENTRIES = 1 << 24  # two_sided_entropy enumerates every window of 2k+1 symbols


@dataclass
class MarkovCorpus:
    """Seeded random Markov chain of order ``order`` over ``alphabet_size`` symbols (see module docstring)."""

    alphabet_size: int = 8
    order: int = 2
    concentration: float = 0.5
    seed: int = 0
    transition: np.ndarray = field(init=False, repr=False)  # (contexts, alphabet_size), rows sum to 1

    def __post_init__(self) -> None:
        if not 2 <= self.alphabet_size <= len(string.ascii_lowercase):
            raise ValueError(f"alphabet_size must be in 2..26, got {self.alphabet_size}")
        if self.order < 1:
            raise ValueError(f"order must be >= 1, got {self.order}")
        if self.concentration <= 0:
            raise ValueError(f"concentration must be > 0, got {self.concentration}")
        if self.alphabet_size ** self.order > _MAX_CONTEXTS:
            raise ValueError(f"alphabet_size ** order = {self.alphabet_size ** self.order} contexts is too many "
                             f"(at most {_MAX_CONTEXTS}); lower the order or the alphabet")
        rng = np.random.default_rng(self.seed)
        alpha = np.full(self.alphabet_size, self.concentration)
        transition = rng.dirichlet(alpha, size=self.num_contexts)
        # Tiny concentrations can round probabilities to exactly 0; keep the chain irreducible.
        transition = np.maximum(transition, 1e-12)
        self.transition = transition / transition.sum(axis=1, keepdims=True)

    @property
    def num_contexts(self) -> int:
        """``alphabet_size ** order``: a context is the last ``order`` symbols, read as a base-V number."""
        return self.alphabet_size ** self.order

    @property
    def alphabet(self) -> str:
        """The characters that render symbols 0..V-1."""
        return string.ascii_lowercase[: self.alphabet_size]

    def _next_context(self, contexts: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        """Drop the oldest symbol of each context and append ``symbols``."""
        return (contexts * self.alphabet_size) % self.num_contexts + symbols

    def stationary_distribution(self, tolerance: float = 1e-13, max_iterations: int = 100_000) -> np.ndarray:
        """pi over contexts, by power iteration on the (sparse) context-to-context chain."""
        contexts = np.arange(self.num_contexts)
        successors = self._next_context(contexts[:, None], np.arange(self.alphabet_size)[None, :])
        pi = np.full(self.num_contexts, 1.0 / self.num_contexts)
        for _ in range(max_iterations):
            updated = np.bincount(successors.ravel(), weights=(pi[:, None] * self.transition).ravel(),
                                  minlength=self.num_contexts)
            # Average with the previous iterate: converges even for periodic chains.
            updated = 0.5 * (updated + pi)
            if np.abs(updated - pi).sum() < tolerance:
                return updated / updated.sum()
            pi = updated
        raise RuntimeError("the stationary distribution did not converge; raise the concentration")

    def entropy_rate(self) -> float:
        """Exact entropy rate of the source in nats per token (the irreducible loss)."""
        pi = self.stationary_distribution()
        conditional_entropy = -(self.transition * np.log(self.transition)).sum(axis=1)
        return float(pi @ conditional_entropy)

    def _context_joint(self, context_length: int) -> np.ndarray:
        """(V^j, V): P(the last j symbols, the next one) in the stationary process, for j <= order.

        The joint law of (k-context, next symbol) is pi(c) P(x | c); summing over the k - j older symbols
        of c leaves its last j, ``c mod V^j`` (contexts read as base-V numbers, oldest symbol first).
        """
        if not 0 <= context_length <= self.order:
            raise ValueError(f"context_length must be in 0..{self.order} (the order), got {context_length}")
        joint_all = self.stationary_distribution()[:, None] * self.transition  # (V^k contexts, V next symbols)
        joint = np.zeros((self.alphabet_size ** context_length, self.alphabet_size))
        np.add.at(joint, np.arange(self.num_contexts) % self.alphabet_size ** context_length, joint_all)
        return joint

    def conditional_table(self, context_length: int) -> np.ndarray:
        """(V^j, V): P(x_t | its j previous symbols), rows indexed as contexts are (oldest symbol first), for
        j <= order: the best predictor that sees only j symbols (j = order: ``transition``; 0: the marginal)."""
        joint = self._context_joint(context_length)
        return joint / joint.sum(axis=1, keepdims=True)

    def context_entropy(self, context_length: int) -> float:
        """H(X_t | the ``context_length`` symbols before it) in nats: the best loss with only that much context.

        0 gives the marginal entropy H(X_t); ``order`` or more gives the entropy rate (older symbols add nothing).
        """
        if context_length < 0:
            raise ValueError(f"context_length must be >= 0, got {context_length}")
        if context_length >= self.order:
            return self.entropy_rate()
        joint = self._context_joint(context_length)
        return float(-(joint * np.log(joint / joint.sum(axis=1, keepdims=True))).sum())

    def two_sided_entropy(self) -> float:
        """H(X_t | the ``order`` symbols on each side) in nats: the floor of masked-token prediction (MLM).

        Those 2k neighbours are X_t's Markov blanket, so no wider context helps; the loss of an MLM that sees
        them all unmasked can approach this and no lower. (With 15% masking some neighbours are masked too,
        so BERT-style MLM's own floor lies between this and the entropy rate.) Exact, from the joint law of
        a window of 2k+1 symbols::

            P(x_{t-k..t+k}) = pi(x_{t-k..t-1}) * prod_{j=0..k} P(x_{t+j} | x_{t+j-k..t+j-1})
        """
        k, V = self.order, self.alphabet_size
        width = 2 * k + 1
        if V ** width * width > _MAX_WINDOW_ENTRIES:
            raise ValueError(f"{V} ** {width} windows of {width} symbols are too many to enumerate (at most "
                             f"{_MAX_WINDOW_ENTRIES} entries); lower the order or the alphabet")
        windows = np.arange(V ** width)
        digits = (windows[:, None] // V ** np.arange(width - 1, -1, -1)[None, :]) % V  # oldest symbol first
        joint = self.stationary_distribution()[windows // V ** (k + 1)]
        for step in range(k + 1):  # the factors that mention x_t: its own and the next k symbols'
            context = digits[:, step:step + k] @ (V ** np.arange(k - 1, -1, -1))
            joint = joint * self.transition[context, digits[:, step + k]]
        joint = joint.reshape(V ** k, V, V ** k)  # (left neighbours, x_t, right neighbours)
        neighbours = joint.sum(axis=1, keepdims=True)
        return float(-(joint * np.log(joint / neighbours)).sum())

    def sample_symbols(self, num_sequences: int, length: int, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """(num_sequences, length) int64 symbols; sequences advance together (vectorised over sequences)."""
        rng = rng if rng is not None else np.random.default_rng(self.seed + 1)
        pi = self.stationary_distribution()
        contexts = rng.choice(self.num_contexts, size=num_sequences, p=pi)
        cumulative = np.cumsum(self.transition, axis=1)
        cumulative[:, -1] = 1.0
        uniforms = rng.random((length, num_sequences))
        symbols = np.empty((num_sequences, length), dtype=np.int64)
        if num_sequences == 1:  # one long sequence: plain Python scalars beat tiny NumPy calls per step
            rows = cumulative.tolist()
            context, vocabulary, contexts_total = int(contexts[0]), self.alphabet_size, self.num_contexts
            drawn_list = []
            for uniform in uniforms[:, 0].tolist():
                drawn = min(bisect.bisect_left(rows[context], uniform), vocabulary - 1)
                drawn_list.append(drawn)
                context = (context * vocabulary) % contexts_total + drawn
            symbols[0] = drawn_list
            return symbols
        for step in range(length):
            rows = cumulative[contexts]
            drawn = (rows < uniforms[step][:, None]).sum(axis=1)
            symbols[:, step] = drawn
            contexts = self._next_context(contexts, drawn)
        return symbols

    def log_likelihood(self, symbols: np.ndarray, context_length: int | None = None) -> np.ndarray:
        """Per-position log P(x_t | the ``context_length`` symbols before it) for positions t >= context_length,
        shape (N, L - context_length). The default, ``order``, is the chain's own law; fewer symbols use
        :meth:`conditional_table`, the best predictor that sees only that many (0: the marginal)."""
        symbols = np.atleast_2d(symbols)
        j = self.order if context_length is None else context_length
        table = self.transition if j == self.order else self.conditional_table(j)  # the latter checks j
        length = symbols.shape[1] - j
        contexts = np.zeros((symbols.shape[0], length), dtype=np.int64)
        for back in range(j, 0, -1):  # the j symbols before t as a base-V number, oldest first
            contexts = contexts * self.alphabet_size + symbols[:, j - back:j - back + length]
        return np.log(table[contexts, symbols[:, j:]])

    def documents(self, num_documents: int, length: int, rng: Optional[np.random.Generator] = None) -> list[str]:
        """``num_documents`` strings of ``length`` characters each."""
        table = np.array(list(self.alphabet))
        return ["".join(row) for row in table[self.sample_symbols(num_documents, length, rng)]]

    def text(self, num_characters: int, rng: Optional[np.random.Generator] = None) -> str:
        """One long document of ``num_characters`` characters."""
        return self.documents(1, num_characters, rng)[0]
