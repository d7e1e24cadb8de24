"""Experiment Q1 — why next-token prediction works: a GPT learns exactly the context the data has.

Two kinds of data, one measurement (:mod:`minipretrain.evaluation.context_use`: the loss of every target by
its position in the window, optionally with attention cut to the last j tokens):

* **Markov chains of order k = 1, 2, 3** (:class:`~minipretrain.data.MarkovCorpus`), where the best loss
  with j tokens of context, H(X | j tokens), is known exactly and stops falling at j = k (the entropy rate
  H_k). A one-layer GPT per chain and seed; then (1) does it reach H_k, (2) cut to a window of j tokens at
  evaluation, does its loss stop improving at j = k, and (3) with the whole context, does the loss against
  position follow the same staircase? One layer, because with L layers a window of j compounds to
  L·(j − 1) + 1 tokens; with one the prediction at t sees exactly tokens t − j + 1 .. t.
* **Tiny Shakespeare** (characters): the loss against position, and the GPT against the n-gram and
  compressor yardsticks (:mod:`minipretrain.evaluation.yardsticks`) of the same split.

The rules are :mod:`.next_token_rules`' (fixed before the runs); the verdicts go to ``docs/results/claims.json``
and the results README's table (:mod:`.claims`); the page and plots are :mod:`.next_token_page`'s.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import next_token_rules as rules
from . import reporting, runner, statistics, texts
from .runner import ModelShape, TrainingPlan

NAME = "next_token"
#: attention windows j evaluated (j tokens visible, the current one included)
WINDOWS = (1, 2, 3, 4, 5)
#: windows are compared on positions p >= this (there every window above cuts the context)
WINDOW_FIRST_POSITION = max(WINDOWS) - 1
MARKOV_REFERENCE_ORDERS = tuple(range(1, max(WINDOWS) + 2))  # Witten-Bell n-grams with 0..5 tokens of context

_MARKOV = {"orders": (1, 2, 3), "alphabet_size": 4, "concentration": 0.5, "chain_seed": 0}
CONFIGS: dict[str, dict[str, Any]] = {
    "smoke": {"markov": {**_MARKOV, "train_chars": 6_000, "valid_chars": 1_200}, "markov_shape": ModelShape(1, 2, 16),
              "markov_seq_len": 8, "markov_plan": TrainingPlan(steps=4, batch_size=4, learning_rate=3e-3, warmup_steps=1),
              "text": {"corpus": "synthetic-english", "words": 2_000}, "text_shape": ModelShape(1, 2, 16),
              "text_seq_len": 16, "text_plan": TrainingPlan(steps=3, batch_size=4, learning_rate=3e-3, warmup_steps=1)},
    # Sized for <= 20 min on 2 cores (see the page). The chains take 2,500 steps because an order-3 chain's lower
    # orders carry almost no signal: the loss sits near H(X | 2 tokens) until the model's attention finds the
    # previous tokens by position, then drops (16 positions rather than 32 shorten that plateau). The text
    # model is nanoGPT's CPU "baby GPT" recipe for half its 2,000 steps.
    "cpu": {"markov": {**_MARKOV, "train_chars": 200_000, "valid_chars": 64_000}, "markov_shape": ModelShape(1, 4, 64),
            "markov_seq_len": 16,
            "markov_plan": TrainingPlan(steps=2500, batch_size=32, learning_rate=3e-3, warmup_steps=100),
            "text": {"corpus": "tinyshakespeare"}, "text_shape": ModelShape(4, 4, 128), "text_seq_len": 64,
            "text_plan": TrainingPlan(steps=1000, batch_size=12, learning_rate=1e-3, warmup_steps=100)},
    # nanoGPT's shakespeare-char shape (without its dropout 0.2) and longer Markov runs; not run here.
    "gpu": {"markov": {**_MARKOV, "train_chars": 1_000_000, "valid_chars": 256_000}, "markov_shape": ModelShape(1, 4, 64),
            "markov_seq_len": 16,
            "markov_plan": TrainingPlan(steps=5000, batch_size=64, learning_rate=3e-3, warmup_steps=200),
            "text": {"corpus": "tinyshakespeare"}, "text_shape": ModelShape(6, 6, 384), "text_seq_len": 256,
            "text_plan": TrainingPlan(steps=5000, batch_size=64, learning_rate=1e-3, warmup_steps=100)},
}


def _oracle_losses(chain: Any, symbols: np.ndarray, context_length: int) -> np.ndarray:
    """−log P(x_s | the ``context_length`` symbols before it) under the true chain, per token (NaN for s < j)."""
    losses = np.full(len(symbols), np.nan)
    losses[context_length:] = -chain.log_likelihood(symbols, context_length)[0]
    return losses


def _train(shape: ModelShape, seq_len: int, plan: TrainingPlan, tokenizer: Any, train_ds: Any, valid_ds: Any,
           seed: int, device: str | None) -> tuple[Any, Any, runner.RunRecord]:
    model = runner.make_model("gpt", shape, tokenizer.vocab_size, seq_len, seed)
    trainer = runner.make_trainer(model, runner.make_objective(model, tokenizer), train_ds, valid_ds, plan, seed,
                                  device=device)
    return model, trainer, runner.train_run(trainer, plan, eval_steps=[])


def _curve(record: runner.RunRecord, points: int = 120) -> dict[str, list[float]]:
    """The training loss, smoothed and thinned to about ``points`` points (for the plots)."""
    losses = statistics.smooth([r["loss"] for r in record.train], max(1, len(record.train) // 50))
    every = max(1, len(losses) // points)
    return {"step": [r["step"] for r in record.train][::every], "loss": [float(x) for x in losses[::every]]}


def _markov_order(order: int, config: dict[str, Any], seeds: Sequence[int], work: Path,
                  device: str | None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Train on the order-``order`` chain for every seed; the results and the per-window evidence (seeds × windows)."""
    from ..data import MarkovCorpus
    from ..evaluation.context_use import target_losses, target_windows
    from ..evaluation.yardsticks import yardstick_table
    from ..tokenizers import CharTokenizer

    settings, seq_len, plan = config["markov"], config["markov_seq_len"], config["markov_plan"]
    chain = MarkovCorpus(alphabet_size=settings["alphabet_size"], order=order,
                         concentration=settings["concentration"], seed=settings["chain_seed"])
    rng = np.random.default_rng([settings["chain_seed"], order])
    train_text, valid_text = chain.text(settings["train_chars"], rng), chain.text(settings["valid_chars"], rng)
    folder = texts.write_split_folder(work / f"markov-order-{order}", train_text, valid_text)
    tokenizer = CharTokenizer()
    train_ds, valid_ds = texts.datasets(folder, tokenizer, seq_len, "clm", work / "cache")
    id_of_symbol = np.asarray(tokenizer.encode(chain.alphabet), dtype=np.int64)

    def symbols_of(text: str) -> np.ndarray:
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(np.int64) - ord("a")

    symbols = symbols_of(valid_text)
    ids = id_of_symbol[symbols]
    oracle = target_windows(_oracle_losses(chain, symbols, order), seq_len)[1]  # (windows, T); NaN before k
    no_context = target_windows(_oracle_losses(chain, symbols, 0), seq_len)[1]
    yardsticks = yardstick_table(id_of_symbol[symbols_of(train_text)], ids, tokenizer.vocab_size, train_text,
                                 valid_text, models=[("witten_bell", n) for n in MARKOV_REFERENCE_ORDERS])
    first = WINDOW_FIRST_POSITION
    evidence: dict[str, list[np.ndarray]] = {name: [] for name in
                                             ("reach", "window_stop", "window_help", "position_flat", "position_grow")}
    runs = []
    for seed in seeds:
        model, trainer, record = _train(config["markov_shape"], seq_len, plan, tokenizer, train_ds, valid_ds, seed,
                                        device)
        full = target_losses(model, ids, seq_len, comm=trainer.comm)
        cut = {j: target_losses(model, ids, seq_len, attention_window=j, comm=trainer.comm) for j in WINDOWS}
        excess = full - oracle
        evidence["reach"].append(excess[:, order - 1:].mean(axis=1))
        evidence["window_stop"].append((cut[order] - cut[order + 1])[:, first:].mean(axis=1))
        before = cut[order - 1] if order > 1 else no_context
        evidence["window_help"].append((before - cut[order])[:, first:].mean(axis=1))
        evidence["position_flat"].append(excess[:, order - 1] - excess[:, order:].mean(axis=1))
        if order >= 2:
            evidence["position_grow"].append(full[:, order - 2] - full[:, order - 1])
        runs.append({"seed": seed, "wall_time_s": record.wall_time_s, "final_train_loss": record.train[-1]["loss"],
                     "step_time_s": float(np.median([r["step_time_s"] for r in record.train])),
                     "whole_split_loss": float(full.mean()), "loss_by_position": full.mean(axis=0).tolist(),
                     "loss_by_window": {str(j): float(cut[j][:, first:].mean()) for j in WINDOWS},
                     "loss_full_context_same_targets": float(full[:, first:].mean()), "train_curve": _curve(record)})
        print(f"[{NAME}] order {order} seed {seed}: whole-split loss {full.mean():.4f} (H_k {chain.entropy_rate():.4f}), "
              f"window losses " + " ".join(f"{j}:{runs[-1]['loss_by_window'][str(j)]:.3f}" for j in WINDOWS) +
              f" ({record.wall_time_s:.0f}s)", flush=True)
    result = {"order": order, "entropy_rate": chain.entropy_rate(),
              "context_entropy": [chain.context_entropy(j) for j in range(max(WINDOWS) + 1)],
              "oracle_loss_by_position": np.nanmean(oracle, axis=0).tolist(),
              "no_context_loss_same_targets": float(no_context[:, first:].mean()),
              "oracle_loss_same_targets": float(oracle[:, first:].mean()),
              "yardsticks": [asdict(y) for y in yardsticks], "valid_windows": int(oracle.shape[0]), "runs": runs}
    return result, {name: np.array(values) for name, values in evidence.items() if values}


def _text_data(config: dict[str, Any], work: Path) -> tuple[Any, str]:
    if config["text"]["corpus"] == "synthetic-english":
        text = texts.english_like_text(config["text"]["words"], 0)
        cut = int(len(text) * 0.9)
        return texts.write_split_folder(work / "text", text[:cut], text[cut:]), "generated pseudo-English (smoke test)"
    return texts.corpus_file("tinyshakespeare"), "Tiny Shakespeare, characters, nanoGPT's 90/10 split"


def _text(config: dict[str, Any], seeds: Sequence[int], work: Path,
          device: str | None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The GPT on real text for every seed: loss by position, whole-split loss, yardsticks."""
    from ..evaluation.context_use import target_losses
    from ..evaluation.yardsticks import yardstick_table
    from ..tokenizers import CharTokenizer

    folder, description = _text_data(config, work)
    seq_len, plan = config["text_seq_len"], config["text_plan"]
    tokenizer = CharTokenizer()
    train_ds, valid_ds = texts.datasets(folder, tokenizer, seq_len, "clm", work / "cache")
    train_ids, valid_ids = np.asarray(train_ds.tokens), np.asarray(valid_ds.tokens)
    split_texts = ["\n".join(dataset.source.documents()) for dataset in (train_ds, valid_ds)]
    yardsticks = yardstick_table(train_ids, valid_ids, tokenizer.vocab_size, *split_texts)
    bins = [(start, min(stop, seq_len)) for start, stop in rules.POSITION_BINS if start < seq_len]
    steps, losses, runs = [], [], []
    for seed in seeds:
        model, trainer, record = _train(config["text_shape"], seq_len, plan, tokenizer, train_ds, valid_ds, seed, device)
        full = target_losses(model, valid_ids, seq_len, comm=trainer.comm)
        by_bin = np.stack([full[:, a:b].mean(axis=1) for a, b in bins], axis=1)  # (windows, bins)
        steps.append(by_bin[:, :-1] - by_bin[:, 1:])
        losses.append(float(full.mean()))
        runs.append({"seed": seed, "wall_time_s": record.wall_time_s, "final_train_loss": record.train[-1]["loss"],
                     "step_time_s": float(np.median([r["step_time_s"] for r in record.train])),
                     "whole_split_loss": losses[-1], "loss_by_position": full.mean(axis=0).tolist(),
                     "loss_by_bin": by_bin.mean(axis=0).tolist(), "train_curve": _curve(record)})
        print(f"[{NAME}] text seed {seed}: whole-split loss {losses[-1]:.4f} ({record.wall_time_s:.0f}s)", flush=True)
    result = {"corpus": description, "bins": bins, "yardsticks": [asdict(y) for y in yardsticks],
              "valid_windows": int(len(full)), "tokens_per_run": plan.steps * plan.batch_size * seq_len,
              "runs": runs}
    return result, {"bin_steps": np.stack(steps, axis=0), "whole_split_loss": np.array(losses)}


def _intervals(markov_evidence: dict[int, dict[str, np.ndarray]], text_evidence: dict[str, np.ndarray]) -> dict:
    """Every claim's interval, from the per-window evidence (:func:`.statistics.seeds_and_sample_interval`)."""
    interval = statistics.seeds_and_sample_interval
    out: dict[str, Any] = {"markov": {str(order): {name: interval(values) for name, values in evidence.items()}
                                      for order, evidence in markov_evidence.items()}}
    steps = text_evidence["bin_steps"]  # (seeds, windows, bin pairs)
    out["text"] = {"bin_steps": [interval(steps[:, :, b]) for b in range(steps.shape[2])],
                   "whole_split_loss": statistics.t_interval(text_evidence["whole_split_loss"])}
    return out


def run(scale: str = "cpu", out_dir: str | Path = "docs/results/next_token", seeds: Sequence[int] = range(5),
        work_dir: str | Path | None = None, claims_path: str | Path | None = None) -> dict[str, Any]:
    """Both parts, then results.json, plots, the page, and this question's records in claims.json (default: the
    ``claims.json`` beside ``out_dir``, whose README's claims table is rewritten when it has one)."""
    from . import next_token_page

    config, out, clock, work = runner.start_run(scale, CONFIGS, out_dir, work_dir, "mp-next-token-")
    seeds = list(seeds)
    device = runner.device_for(scale)
    markov, markov_evidence = {}, {}
    for order in config["markov"]["orders"]:
        markov[str(order)], markov_evidence[order] = _markov_order(order, config, seeds, work, device)
    text, text_evidence = _text(config, seeds, work, device)
    results = {"markov": markov, "text": text, "windows": list(WINDOWS),
               "window_first_position": WINDOW_FIRST_POSITION, "intervals": _intervals(markov_evidence, text_evidence)}
    run_config = {"scale": scale, "markov": config["markov"], "markov_shape": asdict(config["markov_shape"]),
                  "markov_seq_len": config["markov_seq_len"], "markov_plan": asdict(config["markov_plan"]),
                  "text": config["text"], "text_shape": asdict(config["text_shape"]),
                  "text_seq_len": config["text_seq_len"], "text_plan": asdict(config["text_plan"]),
                  "rules": {"reach_margin": rules.REACH_MARGIN, "context_margin": rules.CONTEXT_MARGIN}}
    results["claims"] = rules.claim_records(results, run_config, page=_page_path(out, claims_path))
    next_token_page.plot(results, out)
    reporting.publish(out, NAME, scale, run_config, seeds, results, clock.elapsed(), next_token_page.page)
    next_token_page.publish_claims(results["claims"], out, claims_path)
    return results


def _page_path(out: Path, claims_path: str | Path | None) -> str:
    """The page's path relative to the folder of claims.json (how claims.json names its evidence)."""
    claims_dir = Path(claims_path).parent if claims_path is not None else out.parent
    try:
        return (out.resolve().relative_to(claims_dir.resolve()) / "README.md").as_posix()
    except ValueError:
        return f"{out.name}/README.md"
