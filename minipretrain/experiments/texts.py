"""The experiments' data: registry corpora (mirror first), split folders that ``PretrainingDataset`` reads,
one BPE tokenizer, probe tasks (SST-2, TREC, AG News subsets, or synthetic ones for smoke runs)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_file


def corpus_file(name: str, file_name: str | None = None) -> Path:
    """The local path of a registry corpus file (fetched from the mirror / network into the cache first)."""
    from ..data.download import download
    from ..data.registry import MAIN_TEXT_FILE, get_corpus

    corpus = get_corpus(name)
    file_name = file_name or MAIN_TEXT_FILE[name]
    folder = download(corpus, files=[file_name], progress=False)
    return Path(folder) / file_name


def write_split_folder(folder: str | Path, train_text: str, valid_text: str, test_text: str | None = None) -> Path:
    """A folder with train.txt / valid.txt (/ test.txt) that ``PretrainingDataset`` reads split by file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # Atomic: under mpiexec every rank writes the same text, and no rank may read another's half-written file.
    for name, text in (("train.txt", train_text), ("valid.txt", valid_text), ("test.txt", test_text)):
        if text is not None:
            with atomic_file(folder / name, "w") as handle:
                handle.write(text)
    return folder


def train_bpe(text: str, vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on ``text`` (bytes cover any input, so noisy text never fails)."""
    from ..tokenizers import TextTokenizer

    tokenizer = TextTokenizer(vocab_size=vocab_size)
    tokenizer.train(text)
    return tokenizer


def datasets(folder: str | Path, tokenizer: Any, seq_len: int, objective: str, cache_dir: str | Path,
             eval_split: str = "validation") -> tuple[Any, Any]:
    """Train and evaluation ``PretrainingDataset`` of a split folder (see :func:`write_split_folder`)."""
    from ..data import PretrainingDataset

    common = {"tokenizer": tokenizer, "seq_len": seq_len, "objective": objective, "cache_dir": cache_dir}
    return (PretrainingDataset(folder, split="train", **common),
            PretrainingDataset(folder, split=eval_split, **common))


def load_probe_task(name: str, num_train: int, num_test: int, seed: int = 0) -> dict[str, list[str]]:
    """A seeded subset of a registry classification set: ``{train_texts, train_labels, test_texts, test_labels}``.

    SST-2 tests on its validation split (the GLUE dev set, 872 sentences); TREC on TREC_10 (500 questions);
    AG News on its test split.
    """
    from ..data import read_classification

    test_split = {"sst2": "validation"}.get(name, "test")
    train = read_classification(name, "train")
    test = read_classification(name, test_split)
    rng = np.random.default_rng(seed)
    train_pick = rng.permutation(len(train))[:num_train]
    test_pick = rng.permutation(len(test))[:num_test]
    return {"train_texts": [train[i].text for i in train_pick], "train_labels": [train[i].label for i in train_pick],
            "test_texts": [test[i].text for i in test_pick], "test_labels": [test[i].label for i in test_pick]}


def synthetic_probe_task(num_train: int, num_test: int, seed: int = 0, length: int = 40) -> dict[str, list[str]]:
    """A two-class task over Markov text (class = which of two seeded chains wrote it), for smoke runs."""
    from ..data import MarkovCorpus

    rng = np.random.default_rng(seed)
    chains = [MarkovCorpus(alphabet_size=8, order=1, concentration=0.3, seed=seed + k) for k in (11, 12)]
    labels = rng.integers(0, 2, size=num_train + num_test)
    texts = [chains[label].text(length, rng) for label in labels]
    return {"train_texts": texts[:num_train], "train_labels": [str(x) for x in labels[:num_train]],
            "test_texts": texts[num_train:], "test_labels": [str(x) for x in labels[num_train:]]}


def english_like_text(num_words: int, seed: int = 0) -> str:
    """Seeded pseudo-English (a small word list, sentence case, full stops) for smoke runs and tests."""
    words = ("the a cat dog sat on mat and ran to house big small red blue it was in of with that this "
             "he she they we saw found made good old new time day year man woman child world").split()
    rng = np.random.default_rng(seed)
    out, sentence = [], []
    for _ in range(num_words):
        sentence.append(words[int(rng.integers(len(words)))])
        if len(sentence) >= int(rng.integers(5, 12)):
            out.append(" ".join(sentence).capitalize() + ".")
            sentence = []
    out.append(" ".join(sentence).capitalize() + ".")
    return "\n".join(" ".join(out[i:i + 4]) for i in range(0, len(out), 4))
