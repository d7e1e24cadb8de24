"""Experiment 3 — data quality: the same model and token budget on clean, filtered and unfiltered text.

Training sets (all cut to the same number of characters, all read by one BPE tokenizer trained on clean text):

* **high**: clean English (the Brown corpus);
* **medium**: web-like text (SpamAssassin e-mail bodies: HTML, base64, quoted-printable, signatures) after
  the Gopher quality + repetition, C4 and FineWeb filters and exact deduplication;
* **low**: the same e-mail text unfiltered;
* **noise ladder**: the clean text with controlled noise (``inject_noise(kind="mix")``: boilerplate lines,
  duplicated documents, random characters, markup) in a growing fraction of documents, cut back to the
  clean corpus's size.

Each model is scored on a clean held-out set (WikiText-2 test perplexity) and by a frozen-feature SST-2
probe. The page also reports every filter rule's removal rate on the e-mail text and on the real Common Crawl
sample.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import plots, reporting, runner, statistics, texts
from .runner import ModelShape, TrainingPlan

NAME = "data_quality"

CONFIGS: dict[str, dict[str, Any]] = {
    "smoke": {"shape": ModelShape(1, 2, 16), "seq_len": 32, "vocab_size": 300, "corpus_chars": 30_000,
              "plan": TrainingPlan(steps=4, batch_size=4, learning_rate=3e-3, warmup_steps=1, eval_every=4,
                                   eval_batches=2, eval_batch_size=8),
              "noise_rates": [0.5, 1.0], "probe": "synthetic", "probe_train": 40, "probe_test": 30,
              "probe_fit_steps": 30, "filter_sample": 40, "data": "synthetic"},
    "cpu": {"shape": ModelShape(2, 2, 64), "seq_len": 64, "vocab_size": 512, "corpus_chars": 1_000_000,
            "plan": TrainingPlan(steps=300, batch_size=16, learning_rate=2e-3, warmup_steps=30, eval_every=300,
                                 eval_batches=24, eval_batch_size=32),
            "noise_rates": [0.5, 1.0], "probe": "sst2", "probe_train": 1000, "probe_test": 500,
            "probe_fit_steps": 300, "filter_sample": 1000, "data": "mirror"},
    # The original description's scale (for a GPU machine; not run here).
    "gpu": {"shape": ModelShape(6, 8, 512), "seq_len": 512, "vocab_size": 32_000, "corpus_chars": 200_000_000,
            "plan": TrainingPlan(steps=10_000, batch_size=32, learning_rate=3e-4, warmup_steps=500,
                                 eval_every=1000, eval_batches=None),
            "noise_rates": [0.1, 0.25, 0.5, 1.0], "probe": "sst2", "probe_train": 6000, "probe_test": 872,
            "probe_fit_steps": 500, "filter_sample": None, "data": "mirror"},
}

HELDOUT_FRACTION = 0.05
FILTER_ORDER = ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality")


def _filters() -> list[Any]:
    from ..data.quality import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

    return [GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter(), FineWebQualityFilter()]


def blank_line_documents(text: str) -> list[str]:
    """Split a blank-line-separated file into non-empty documents."""
    return [part.strip("\n") for part in text.replace("\r\n", "\n").split("\n\n") if part.strip()]


PARAGRAPHS_PER_DOCUMENT = 10


def group_paragraphs(paragraphs: Sequence[str], size: int = PARAGRAPHS_PER_DOCUMENT) -> list[str]:
    """Join every ``size`` consecutive paragraphs into one document."""
    return ["\n\n".join(paragraphs[i:i + size]) for i in range(0, len(paragraphs), size)]


def filter_documents(documents: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    """Run the filter pipeline (Gopher quality, Gopher repetition, C4 with its line rewrites, FineWeb), then
    exact dedup; returns the kept texts and how many documents each stage removed."""
    from ..data.quality import exact_dedup

    removed = dict.fromkeys((*FILTER_ORDER, "exact_dedup"), 0)
    kept = []
    filters = _filters()
    for text in documents:
        for quality_filter in filters:
            decision = quality_filter.filter(text)
            if not decision.keep:
                removed[quality_filter.name] += 1
                break
            text = decision.text
        else:
            kept.append(text)
    unique = exact_dedup(kept)
    removed["exact_dedup"] = len(kept) - len(unique)
    return [kept[i] for i in unique], removed


def removal_reports(sources: dict[str, list[str]]) -> dict[str, Any]:
    """Per source and filter: kept fraction, per-rule first-failure and own rates (``removal_report``)."""
    from ..data.quality import removal_report

    reports: dict[str, Any] = {}
    for source_name, documents in sources.items():
        reports[source_name] = {"n_documents": len(documents)}
        for quality_filter in _filters():
            report = removal_report(quality_filter, documents)
            reports[source_name][report.filter_name] = asdict(report)
    return reports


def _cut(text: str, chars: int) -> str:
    if len(text) < chars:
        raise ValueError(f"a training corpus has {len(text):,} characters, fewer than the {chars:,} every condition gets")
    return text[:chars]


def _sources(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """Clean documents, web-like documents, the real CC sample, the clean evaluation text and the probe task."""
    if config["data"] == "synthetic":
        clean_docs = [texts.english_like_text(90, seed + i) for i in range(200)]
        rng = np.random.default_rng(seed)
        web_docs = []
        for i in range(300):
            body = texts.english_like_text(90, seed + 1000 + i)
            if rng.random() < 0.5:
                body = f"<html><body><table><tr><td>{body}</td></tr></table></body></html>\n" + "QUJD" * 40
            web_docs.append(body)
        cc_docs = web_docs[:20]
        eval_text = texts.english_like_text(3000, seed + 99)
        probe = texts.synthetic_probe_task(config["probe_train"], config["probe_test"], seed)
        return {"clean": clean_docs, "web": web_docs, "cc": cc_docs, "eval_text": eval_text, "probe": probe,
                "web_by_source": {"synthetic_web": web_docs}, "descriptions": {"clean": "generated pseudo-English",
                "web": "generated pseudo-English wrapped in HTML and base64-like blobs", "eval": "generated text"}}
    brown = texts.corpus_file("brown").read_text(encoding="utf-8").splitlines()
    # Brown is one sentence per line; group 20 sentences into a document so noise acts per document.
    clean_docs = [" ".join(brown[i:i + 20]) for i in range(0, len(brown), 20)]
    # The files separate bodies *and* paragraphs by blank lines, so e-mails cannot be recovered; groups of
    # PARAGRAPHS_PER_DOCUMENT consecutive paragraphs (~ the mean e-mail: 59k paragraphs / 6k messages) stand in.
    ham = group_paragraphs(blank_line_documents(
        texts.corpus_file("spamassassin", "ham_bodies.txt").read_text(encoding="utf-8")))
    spam = group_paragraphs(blank_line_documents(
        texts.corpus_file("spamassassin", "spam_bodies.txt").read_text(encoding="utf-8")))
    rng = np.random.default_rng(seed)
    web_docs = [ham[i] if i < len(ham) else spam[i - len(ham)] for i in rng.permutation(len(ham) + len(spam))]
    cc_docs = []
    for file_name in ("multiple_files__cc_en_head-0091.jsonl", "multiple_files__cc_en_head-0174.jsonl"):
        for line in texts.corpus_file("common-crawl-sample", file_name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                cc_docs.append(json.loads(line)["text"])
    return {"clean": clean_docs, "web": web_docs, "cc": cc_docs, "eval_text": None,
            "probe": texts.load_probe_task(config["probe"], config["probe_train"], config["probe_test"], seed),
            "web_by_source": {"spamassassin_ham": ham, "spamassassin_spam": spam},
            "descriptions": {"clean": "Brown corpus (20 sentences per document)",
                             "web": "SpamAssassin e-mail bodies, ham + spam (the files do not mark where one e-mail "
                                    f"ends, so every {PARAGRAPHS_PER_DOCUMENT} consecutive blank-line-separated "
                                    "paragraphs form one document, about one e-mail's worth)",
                             "eval": "WikiText-2 test (wiki.test.tokens)"}}


def run(scale: str = "cpu", out_dir: str | Path = "docs/results/data_quality", seeds: Sequence[int] = (0, 1, 2),
        work_dir: str | Path | None = None) -> dict[str, Any]:
    """Build the training sets, train every condition for every seed, evaluate, write results/plots/page."""
    from ..data.quality import inject_noise, match_size
    from ..evaluation.perplexity import evaluate
    from ..evaluation.probe import extract_features, train_probe

    config, out, clock, work = runner.start_run(scale, CONFIGS, out_dir, work_dir, "mp-quality-")
    plan: TrainingPlan = config["plan"]
    data = _sources(config, 0)
    sample_size = config["filter_sample"]
    rng = np.random.default_rng(0)

    def sample(documents: list[str]) -> list[str]:
        if sample_size is None or len(documents) <= sample_size:
            return documents
        return [documents[i] for i in sorted(rng.choice(len(documents), sample_size, replace=False))]

    reports = removal_reports({**{name: sample(docs) for name, docs in data["web_by_source"].items()},
                               "common_crawl_sample": data["cc"], "clean_training_text": sample(data["clean"])})
    filtered_web, stage_removed = filter_documents(data["web"])
    clean_text = "\n\n".join(data["clean"])
    # The last HELDOUT_FRACTION of the clean text is a second clean evaluation set, in the training domain of
    # "high"; no condition trains on it (training sets are cut from the start of each corpus).
    heldout_text = clean_text[-int(len(clean_text) * HELDOUT_FRACTION):]
    clean_text = clean_text[:-len(heldout_text)]
    # Every condition gets the same characters: the configured amount, or less if filtering left less.
    chars = min(config["corpus_chars"], len("\n\n".join(filtered_web)), len(clean_text))
    corpora = {"high (clean)": _cut(clean_text, chars),
               "medium (web, filtered)": _cut("\n\n".join(filtered_web), chars),
               "low (web, unfiltered)": _cut("\n\n".join(data["web"]), chars)}
    noise_records = {}
    clean_for_ladder = [d for d in data["clean"]]
    budget_docs = []
    total = 0
    for document in clean_for_ladder:  # the ladder starts from exactly the high-quality training text
        budget_docs.append(document)
        total += len(document) + 2
        if total >= chars:
            break
    for rate in config["noise_rates"]:
        noised = inject_noise(budget_docs, "mix", rate, seed=0)
        matched = match_size(budget_docs, noised.documents, unit="chars")
        corpora[f"clean + noise {int(100 * rate)}%"] = _cut("\n\n".join(matched), chars)
        noise_records[str(rate)] = {"noised_fraction": noised.noised_fraction(),
                                    "kinds": {k: noised.kinds.count(k) for k in set(noised.kinds)}}

    tokenizer = texts.train_bpe(corpora["high (clean)"][:1_000_000], config["vocab_size"])
    if data["eval_text"] is None:
        from ..data import PretrainingDataset

        eval_folder = texts.corpus_file("wikitext-2", "wiki.test.tokens").parent
        eval_ds = PretrainingDataset(eval_folder, tokenizer, config["seq_len"], "clm", split="test",
                                     cache_dir=work / "cache")
    else:
        folder = texts.write_split_folder(work / "eval", data["eval_text"][:-2000], data["eval_text"][-2000:])
        _, eval_ds = texts.datasets(folder, tokenizer, config["seq_len"], "clm", work / "cache")
    heldout_folder = texts.write_split_folder(work / "heldout", heldout_text, heldout_text)
    _, heldout_ds = texts.datasets(heldout_folder, tokenizer, config["seq_len"], "clm", work / "cache")
    probe = data["probe"]
    conditions: dict[str, list[dict[str, Any]]] = {}
    for index, (condition, text) in enumerate(corpora.items()):
        folder = texts.write_split_folder(work / f"condition{index}", text, text[-5000:])
        train_ds, _ = texts.datasets(folder, tokenizer, config["seq_len"], "clm", work / "cache")
        conditions[condition] = []
        for seed in seeds:
            model = runner.make_model("gpt", config["shape"], tokenizer.vocab_size, config["seq_len"], seed)
            trainer = runner.make_trainer(model, runner.make_objective(model, tokenizer), train_ds, eval_ds, plan, seed,
                                          device=runner.device_for(scale))
            record = runner.train_run(trainer, plan, eval_steps=[plan.steps])
            train_x = extract_features(model, tokenizer, probe["train_texts"], config["seq_len"])
            test_x = extract_features(model, tokenizer, probe["test_texts"], config["seq_len"])
            probe_result = train_probe(train_x, probe["train_labels"], test_x, probe["test_labels"],
                                       steps=config["probe_fit_steps"], seed=seed)
            final = record.final_eval()
            heldout = evaluate(model, heldout_ds, trainer.objective, plan.eval_batch_size, plan.eval_batches)
            conditions[condition].append({"seed": seed, "clean_eval_loss": final["val_loss"],
                                          "clean_eval_perplexity": final["val_perplexity"],
                                          "heldout_clean_loss": heldout.loss,
                                          "heldout_clean_perplexity": heldout.perplexity,
                                          "final_train_loss": record.train[-1]["loss"],
                                          "train_tokens_in_corpus": train_ds.num_tokens,
                                          "probe": probe_result.as_dict(), "wall_time_s": record.wall_time_s,
                                          "train_curve": [(r["tokens"], r["loss"]) for r in record.train]})
            print(f"[{NAME}] {condition} seed {seed}: clean ppl {final['val_perplexity']:.1f}, probe "
                  f"{probe_result.test_accuracy:.3f} ({record.wall_time_s:.0f}s)", flush=True)

    summary = {condition: {"clean_eval_perplexity": statistics.t_interval([r["clean_eval_perplexity"] for r in runs]),
                           "clean_eval_loss": statistics.t_interval([r["clean_eval_loss"] for r in runs]),
                           "heldout_clean_perplexity": statistics.t_interval([r["heldout_clean_perplexity"] for r in runs]),
                           "probe_accuracy": statistics.t_interval([r["probe"]["test_accuracy"] for r in runs]),
                           "train_tokens_in_corpus": runs[0]["train_tokens_in_corpus"]}
               for condition, runs in conditions.items()}
    high = conditions["high (clean)"]
    for condition, runs in conditions.items():
        summary[condition]["loss_minus_high"] = statistics.t_interval(
            [r["clean_eval_loss"] - h["clean_eval_loss"] for r, h in zip(runs, high)])
        summary[condition]["heldout_loss_minus_high"] = statistics.t_interval(
            [r["heldout_clean_loss"] - h["heldout_clean_loss"] for r, h in zip(runs, high)])
    results = {"descriptions": data["descriptions"], "removal_reports": reports,
               "pipeline_removed_documents": stage_removed, "web_documents": len(data["web"]),
               "web_documents_kept": len(filtered_web), "noise_ladder": noise_records, "training_chars": chars,
               "tokenizer": f"byte-level BPE, vocab {tokenizer.vocab_size}, trained on the clean text",
               "eval_tokens": min(eval_ds.num_tokens, (plan.eval_batches or 10**9) * plan.eval_batch_size * config["seq_len"]),
               "summary": summary, "conditions": conditions}
    run_config = {"scale": scale, "shape": asdict(config["shape"]), "plan": asdict(plan),
                  **{k: v for k, v in config.items() if k not in ("shape", "plan")}}
    _plot(results, out)
    wall = clock.elapsed()
    reporting.publish(out, NAME, scale, run_config, seeds, results, wall, _page)
    return results


def _plot(results: dict[str, Any], out: Path) -> None:
    summary = results["summary"]
    names = list(summary)
    fig, axes = plots.new_figure(1, 3, width=5.0, height=4.2)
    for ax, key, label in ((axes[0][0], "clean_eval_perplexity", "WikiText-2 test perplexity"),
                           (axes[0][1], "heldout_clean_perplexity", "held-out clean-corpus perplexity"),
                           (axes[0][2], "probe_accuracy", "SST-2 frozen-feature probe accuracy")):
        means = [summary[n][key]["mean"] for n in names]
        errors = [[summary[n][key]["mean"] - summary[n][key]["low"] for n in names],
                  [summary[n][key]["high"] - summary[n][key]["mean"] for n in names]]
        errors = np.nan_to_num(np.array(errors))
        ax.bar(range(len(names)), means, yerr=errors, capsize=4,
               color=["tab:green", "tab:olive", "tab:red"] + ["tab:purple"] * (len(names) - 3))
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=25, ha="right", fontsize=8)
        ax.set_title(label, fontsize=10)
        if key == "probe_accuracy":
            ax.set_ylim(min(means) - 0.1, max(means) + 0.1)
    plots.save_figure(fig, out / "quality_comparison.png")


def _page(results: dict[str, Any], config: dict[str, Any], seeds: Sequence[int], wall: float) -> str:
    fi = statistics.format_interval
    s = results["summary"]
    plan = config["plan"]
    tokens = plan["steps"] * plan["batch_size"] * config["seq_len"]
    lines = ["# Experiment 3 — data quality", "",
             f"**Scale:** `{config['scale']}` · **seeds:** {list(seeds)} · **wall time:** {wall / 60:.1f} min · "
             "means with 95% t-intervals over seeds.", "",
             "## What ran",
             f"- High quality: {results['descriptions']['clean']}. Web-like: {results['descriptions']['web']}.",
             f"- Medium = the web-like documents after Gopher quality → Gopher repetition → C4 (with its line "
             f"removals) → FineWeb → exact dedup: {results['web_documents_kept']:,} of {results['web_documents']:,} "
             f"documents kept (removed per stage: {results['pipeline_removed_documents']}). Low = the same documents "
             "unfiltered.",
             f"- Noise ladder: the high-quality documents with `inject_noise(kind='mix')` at rates "
             f"{config['noise_rates']} (fraction of documents corrupted by boilerplate, duplication, random "
             "characters or markup), cut back to the same characters.",
             f"- Every training set is cut to {results['training_chars']:,} characters; one {results['tokenizer']}.",
             f"- Model: GPT {config['shape']['n_layer']} layers × {config['shape']['n_embd']} wide, {plan['steps']} "
             f"steps × {plan['batch_size']} × {config['seq_len']} = {tokens:,} training tokens for every condition, "
             f"lr {plan['learning_rate']}, warmup {plan['warmup_steps']}, cosine.",
             f"- Evaluation: perplexity on {results['descriptions']['eval']} (first {results['eval_tokens']:,} tokens) and "
             f"on held-out text of the clean corpus (its last {100 * HELDOUT_FRACTION:.0f}%, never trained on), "
             f"and a frozen-feature probe ({config['probe']}, {config['probe_train']} train / {config['probe_test']} "
             "test).", "",
             "## What came out", "",
             "| training data | WikiText-2 test ppl | Δ loss vs high | held-out clean-corpus ppl | Δ loss vs high | "
             "probe accuracy (%) |", "|---|---|---|---|---|---|"]
    for condition, entry in s.items():
        lines.append(f"| {condition} | {fi(entry['clean_eval_perplexity'], 1)} | {fi(entry['loss_minus_high'], 3)} | "
                     f"{fi(entry['heldout_clean_perplexity'], 1)} | {fi(entry['heldout_loss_minus_high'], 3)} | "
                     f"{fi(entry['probe_accuracy'], 1, 100)} |")
    lines += ["", "![quality comparison](quality_comparison.png)", "", "### Filter removal rates", "",
              "Share of documents each filter removes (whole filter), and the rules that remove the most (rate "
              "each rule fails on its own):", "",
              "| source | documents | " + " | ".join(FILTER_ORDER) + " |", "|---|---|" + "---|" * len(FILTER_ORDER)]
    for source, report in results["removal_reports"].items():
        cells = [f"{100 * (1 - report[f]['kept_fraction']):.1f}%" for f in FILTER_ORDER]
        lines.append(f"| {source} | {report['n_documents']:,} | " + " | ".join(cells) + " |")
    lines += ["", "Per-rule rates (each rule on its own; first-failure rates are in results.json):", ""]
    for source, report in results["removal_reports"].items():
        parts = []
        for f in FILTER_ORDER:
            top = sorted(report[f]["own_rate"].items(), key=lambda item: -item[1])[:3]
            parts.append(f"{f}: " + ", ".join(f"{rule} {100 * rate:.0f}%" for rule, rate in top if rate > 0))
        lines.append(f"- **{source}** — " + "; ".join(parts))
    def resolved(delta: dict[str, float]) -> str:
        if np.isfinite(delta["low"]) and delta["low"] > 0:
            return "worse than high, resolved by the seeds"
        if np.isfinite(delta["high"]) and delta["high"] < 0:
            return "*better* than high, resolved by the seeds"
        return "not resolved by the seeds"

    lines += ["", "## Did the expectation reproduce?", "",
              "The expectation: large quality differences at the same quantity. Per condition, loss minus the "
              "high-quality run's (nats; positive = worse than clean):", ""]
    for condition, entry in s.items():
        if condition == "high (clean)":
            continue
        lines.append(f"- {condition}: WikiText-2 {fi(entry['loss_minus_high'], 3)} ({resolved(entry['loss_minus_high'])}); "
                     f"held-out clean corpus {fi(entry['heldout_loss_minus_high'], 3)} "
                     f"({resolved(entry['heldout_loss_minus_high'])}).")
    ladder = [e for c, e in s.items() if c.startswith("clean + noise")]
    if ladder and all(e["loss_minus_high"]["mean"] < 0 for e in ladder):
        lines += ["", "Noise *lowered* the WikiText-2 loss. A likely reason (not tested separately): WikiText-2's "
                  "tokenised text is itself full of markup-like tokens (` @-@ `, `<unk>`, `= = Heading = =`, digits) that "
                  "never occur in the clean training text, and random-character and markup noise teaches the model to "
                  "give such characters some probability. The held-out clean-corpus column, in the training domain "
                  "and free of those tokens, is the cleaner measure of what noise does."]
    lines += ["", "Part of any high-vs-web gap is *domain*, not only quality: e-mail is far from both evaluation sets "
              "whatever its cleanliness; the noise ladder holds the domain fixed and changes only the noise.", ""]
    probe_values = {c: e["probe_accuracy"]["mean"] for c, e in s.items()}
    lines.append(f"Downstream probe: accuracies range {100 * min(probe_values.values()):.1f}–"
                 f"{100 * max(probe_values.values()):.1f}%; see the table for whether intervals overlap (at this "
                 "scale the probe mostly reads surface features, so small differences are expected).")
    lines += ["", "## Caveats",
              "- WikiText-2's train split is not in the mirror; its *test* split is only the clean evaluation set.",
              "- E-mail documents are groups of 10 paragraphs (the files lose message boundaries); the real Common Crawl sample has 20 documents, enough "
              "to inspect the filters but not to train on.",
              "- Tiny models and budgets; `--scale gpu` holds the original description's scale (not run here)."]
    return "\n".join(lines)
