"""Corpora and pre-training datasets: registry, download/mirror, readers, synthetic source, token cache.

``from minipretrain.data import PretrainingDataset, TextTokenizer`` is the public entry point; the
tokenizers are re-exported here because a dataset always comes with one.
"""
from minipretrain.data.dataset import Batch, PretrainingDataset
from minipretrain.data.download import (
    DATA_DIR_ENV,
    MIRROR_ENV,
    ChecksumError,
    DownloadError,
    data_dir,
    download,
    mirror_dir,
    sha256_of_file,
)
from minipretrain.data.readers import (
    LabeledExample,
    WikiArticle,
    iter_wikitext_articles,
    parse_wikitext_header,
    read_agnews,
    read_brown_genres,
    read_classification,
    read_sst2,
    read_text,
    read_trec,
    read_wikitext,
)
from minipretrain.data.registry import CORPORA, Corpus, CorpusFile, get_corpus, list_corpora
from minipretrain.data.sources import DataSourceError, TextSource, resolve_source
from minipretrain.data.synthetic import MarkovCorpus
from minipretrain.data.token_cache import TokenCacheError
from minipretrain.tokenizers import CharTokenizer, TextTokenizer, Tokenizer, WordPieceTokenizer, load_tokenizer

__all__ = [
    "Batch", "CORPORA", "ChecksumError", "CharTokenizer", "Corpus", "CorpusFile", "DATA_DIR_ENV", "DataSourceError",
    "DownloadError", "LabeledExample", "MIRROR_ENV", "MarkovCorpus", "PretrainingDataset", "TextSource",
    "TextTokenizer", "TokenCacheError", "Tokenizer", "WikiArticle", "WordPieceTokenizer", "data_dir", "download",
    "get_corpus", "iter_wikitext_articles", "list_corpora", "load_tokenizer", "mirror_dir", "parse_wikitext_header",
    "read_agnews", "read_brown_genres", "read_classification", "read_sst2", "read_text", "read_trec",
    "read_wikitext", "resolve_source", "sha256_of_file",
]
