"""Tokenizers: byte-level BPE (``TextTokenizer``), BERT-style WordPiece, and characters; ``SentinelTokenizer``
adds T5's ``<extra_id_k>`` sentinels to any of them.

All share :class:`~minipretrain.tokenizers.base.Tokenizer`; ``load_tokenizer(path)`` reads any saved one.
"""
from minipretrain.tokenizers.base import (
    CLS_TOKEN,
    EOS_TOKEN,
    MASK_TOKEN,
    PAD_TOKEN,
    SEP_TOKEN,
    SPECIAL_TOKENS,
    NotTrainedError,
    Tokenizer,
    TokenizerError,
    TokenizerFileError,
    load_tokenizer,
)
from minipretrain.tokenizers.bpe import GPT2_SPLIT_PATTERN, TextTokenizer
from minipretrain.tokenizers.char import CharTokenizer
from minipretrain.tokenizers.sentinels import SentinelTokenizer
from minipretrain.tokenizers.wordpiece import UNK_TOKEN, WordPieceTokenizer, basic_tokenize

__all__ = [
    "CLS_TOKEN", "EOS_TOKEN", "MASK_TOKEN", "PAD_TOKEN", "SEP_TOKEN", "SPECIAL_TOKENS", "UNK_TOKEN",
    "GPT2_SPLIT_PATTERN", "CharTokenizer", "NotTrainedError", "SentinelTokenizer", "TextTokenizer", "Tokenizer",
    "TokenizerError", "TokenizerFileError", "WordPieceTokenizer", "basic_tokenize", "load_tokenizer",
]
