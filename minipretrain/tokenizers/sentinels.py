"""Sentinel tokens ``<extra_id_0>``, ``<extra_id_1>``, … for T5's span corruption, added to any tokenizer.

Span corruption replaces each dropped span of the input by a sentinel of its own and writes the same sentinel
in front of the span in the target, so the model knows which hole each piece fills. As in Hugging Face's T5
tokenizer, the sentinels take the last ids of the vocabulary, counting *down*: with n sentinels after a base
vocabulary of size V, ``<extra_id_k>`` is id V + n - 1 - k. They are special tokens (never split, never masked,
typed in text only when ``allowed_special`` allows).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from minipretrain.tokenizers.base import TextSource, Tokenizer, TokenizerError, TokenizerFileError, _build


def sentinel_token(index: int) -> str:
    """The string of sentinel ``index``: ``<extra_id_{index}>``."""
    return f"<extra_id_{index}>"


class SentinelTokenizer(Tokenizer):
    """``base`` with ``num_sentinels`` sentinel tokens appended to its vocabulary (see the module docstring)."""

    kind = "sentinels"

    def __init__(self, base: Tokenizer, num_sentinels: int = 100) -> None:
        if int(num_sentinels) < 1:
            raise TokenizerError(f"SentinelTokenizer needs at least one sentinel, got num_sentinels={num_sentinels}")
        if isinstance(base, SentinelTokenizer):
            raise TokenizerError("this tokenizer already has sentinels; wrap the base tokenizer once")
        self.base = base
        self.num_sentinels = int(num_sentinels)

    @property
    def vocab_size(self) -> int:
        return self.base.vocab_size + self.num_sentinels

    @property
    def is_trained(self) -> bool:
        return self.base.is_trained

    @property
    def sentinel_ids(self) -> list[int]:
        """Id of ``<extra_id_k>`` at index k (descending from the last id)."""
        return [self.vocab_size - 1 - k for k in range(self.num_sentinels)]

    @property
    def special_tokens(self) -> dict[str, int]:
        specials = self.base.special_tokens
        specials.update({sentinel_token(k): i for k, i in enumerate(self.sentinel_ids)})
        return specials

    def train(self, text: TextSource) -> SentinelTokenizer:
        self.base.train(text)
        return self

    def _encode_ordinary(self, text: str, out: list[int]) -> None:
        self.base._encode_ordinary(text, out)

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text; sentinels become ``<extra_id_k>``, runs of other ids go to the base tokenizer."""
        first_sentinel = self.base.vocab_size
        pieces: list[str] = []
        run: list[int] = []
        for token_id in ids:
            token_id = int(token_id)
            if first_sentinel <= token_id < self.vocab_size:
                if run:
                    pieces.append(self.base.decode(run))
                    run = []
                pieces.append(sentinel_token(self.vocab_size - 1 - token_id))
            else:
                run.append(token_id)
        if run:
            pieces.append(self.base.decode(run))
        return "".join(pieces)

    def _state(self) -> dict[str, Any]:
        return {"num_sentinels": self.num_sentinels, "base": self.base.to_dict()}

    @classmethod
    def _from_state(cls, state: dict[str, Any]) -> SentinelTokenizer:
        document = state["base"]
        if document.get("kind") not in Tokenizer.kinds or document["kind"] == cls.kind:
            raise TokenizerFileError(f"the base of a sentinel tokenizer has unknown kind {document.get('kind')!r}; "
                                     f"known kinds: {sorted(set(Tokenizer.kinds) - {cls.kind})}")
        base_class = Tokenizer.kinds[document["kind"]]
        return cls(_build(base_class, document, "<base tokenizer>"), int(state["num_sentinels"]))
