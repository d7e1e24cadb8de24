"""Experiment 2 — scaling laws: does loss fall as a power law in model size?

GPTs of at least 6 sizes (non-embedding parameters spanning >= 1.5 decades), each trained on the same data
for the same number of tokens with the same schedule, then

* ``L(N) = (N_c / N)^alpha + L_inf`` fitted with the robust fitter (:mod:`.scaling_fit`: Huber loss on log
  residuals, multi-start L-BFGS) with bootstrap intervals and a bootstrap band for the curve;
* the same fit on all but the largest model, and its error predicting the largest;
* Kaplan's form ``(N_c / N)^alpha`` (no L_inf) for comparison of exponents;
* the whole sweep once more on a synthetic Markov corpus whose entropy rate H (the true irreducible loss) is
  known exactly, to see whether the fitted L_inf finds it.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import plots, reporting, runner, statistics, texts
from .runner import ModelShape, TrainingPlan

NAME = "scaling"
KAPLAN_ALPHA_N = 0.076
CHINCHILLA_ALPHA = 0.34

CONFIGS: dict[str, dict[str, Any]] = {
    "smoke": {"shapes": [ModelShape(1, 1, 8), ModelShape(1, 1, 12), ModelShape(1, 2, 16), ModelShape(1, 2, 20),
                         ModelShape(1, 2, 24), ModelShape(1, 2, 32)],
              "seq_len": 16, "plan": TrainingPlan(steps=4, batch_size=4, learning_rate=3e-3, warmup_steps=1,
                                                  eval_every=4, eval_batches=2, eval_batch_size=8),
              "corpus": "synthetic-english", "corpus_chars": 20_000, "markov": {"alphabet_size": 6, "order": 2,
              "concentration": 0.3, "chars": 20_000}, "bootstrap": 3, "fit_starts": 2},
    "cpu": {"shapes": [ModelShape(1, 1, 16), ModelShape(2, 2, 24), ModelShape(2, 2, 32), ModelShape(2, 2, 48),
                       ModelShape(3, 4, 64), ModelShape(4, 4, 80)],
            "seq_len": 64, "plan": TrainingPlan(steps=250, batch_size=16, learning_rate=3e-3, warmup_steps=25,
                                                eval_every=250, eval_batches=16, eval_batch_size=32),
            "corpus": "tinyshakespeare", "corpus_chars": None, "markov": {"alphabet_size": 26, "order": 1,
            "concentration": 0.1, "chars": 400_000}, "bootstrap": 60, "fit_starts": 8},
    # The original description's sizes (25M-200M parameters, WikiText-103, 10K steps); not run here.
    "gpu": {"shapes": [ModelShape(2, 4, 256), ModelShape(4, 8, 384), ModelShape(6, 8, 512), ModelShape(8, 8, 768),
                       ModelShape(12, 12, 768), ModelShape(16, 16, 1024)],
            "seq_len": 512, "plan": TrainingPlan(steps=10_000, batch_size=32, learning_rate=3e-4, warmup_steps=500,
                                                 eval_every=10_000, eval_batches=100),
            "corpus": "wikitext-103", "corpus_chars": None, "markov": {"alphabet_size": 16, "order": 4,
            "concentration": 0.3, "chars": 20_000_000}, "bootstrap": 200, "fit_starts": 8},
}


def _sweep(folder: Path, tokenizer: Any, config: dict[str, Any], seeds: Sequence[int], cache: Path,
           label: str, device: str | None = None) -> list[dict[str, Any]]:
    """Train every shape for every seed on ``folder``; one record per (shape, seed)."""
    from ..models import count_parameters

    plan: TrainingPlan = config["plan"]
    train_ds, valid_ds = texts.datasets(folder, tokenizer, config["seq_len"], "clm", cache)
    points = []
    for shape in config["shapes"]:
        for seed in seeds:
            model = runner.make_model("gpt", shape, tokenizer.vocab_size, config["seq_len"], seed)
            trainer = runner.make_trainer(model, runner.make_objective(model, tokenizer), train_ds, valid_ds, plan, seed,
                                          device=device)
            record = runner.train_run(trainer, plan, eval_steps=[plan.steps])
            final = record.final_eval()
            points.append({"shape": shape.label(), "seed": seed,
                           "non_embedding_params": count_parameters(model, non_embedding=True),
                           "total_params": count_parameters(model, non_embedding=False),
                           "val_loss": final["val_loss"], "final_train_loss": record.train[-1]["loss"],
                           "tokens": trainer.tokens_seen, "wall_time_s": record.wall_time_s,
                           "step_time_s": float(np.median([r["step_time_s"] for r in record.train]))})
            print(f"[{NAME}/{label}] {shape.label()} seed {seed}: N={points[-1]['non_embedding_params']:,} "
                  f"val loss {final['val_loss']:.4f} ({record.wall_time_s:.0f}s)", flush=True)
    return points


def _fit(points: list[dict[str, Any]], n_bootstrap: int, n_starts: int = 8, seed: int = 0) -> dict[str, Any]:
    """Power law + L_inf (with bootstrap intervals and band), Kaplan's form, and the hold-out extrapolation."""
    from . import scaling_fit

    n = np.array([p["non_embedding_params"] for p in points], dtype=np.float64)
    loss = np.array([p["val_loss"] for p in points], dtype=np.float64)
    full = scaling_fit.fit_power_law(n, loss, n_starts=n_starts)
    kaplan = scaling_fit.fit_kaplan(n, loss, n_starts=n_starts)
    grid = np.geomspace(n.min() / 1.5, n.max() * 1.5, 60)
    # One bootstrap loop gives both the parameter intervals and the curve's band: resample the runs with
    # replacement, refit, keep the parameters and the predicted curve.
    rng = np.random.default_rng(seed)
    curves, samples = [], {name: [] for name in full.params}
    for _ in range(n_bootstrap):
        chosen = rng.integers(0, len(n), size=len(n))
        if len(np.unique(n[chosen])) < 3:  # two sizes cannot pin three parameters
            continue
        refit = scaling_fit.fit_power_law(n[chosen], loss[chosen], n_starts=2)
        curves.append(refit.predict(grid))
        for name, value in refit.params.items():
            samples[name].append(value)
    band = np.percentile(np.array(curves), [2.5, 97.5], axis=0) if curves else np.full((2, len(grid)), np.nan)
    full.intervals = {name: ((float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) if v else
                             (float("nan"), float("nan"))) for name, v in samples.items()}
    result: dict[str, Any] = {
        "power_law": {"params": full.params, "intervals": full.intervals, "objective": full.objective},
        "kaplan": {"params": kaplan.params, "objective": kaplan.objective},
        "bootstrap_resamples_used": len(curves),
        "curve": {"n": grid.tolist(), "fit": full.predict(grid).tolist(), "band_low": band[0].tolist(),
                  "band_high": band[1].tolist()},
    }
    try:
        holdout = scaling_fit.holdout_largest_model("power_law", n, loss, n_starts=n_starts)
        result["holdout_largest"] = {"fit_params": holdout.fit.params, "largest_n": holdout.largest_n_params,
                                     "predicted": holdout.predicted.tolist(), "actual": holdout.actual.tolist(),
                                     "relative_error": holdout.relative_error,
                                     "predicted_mean": float(np.mean(holdout.predicted)),
                                     "actual_mean": float(np.mean(holdout.actual))}
    except ValueError as error:
        result["holdout_largest"] = {"error": str(error)}
    return result


def _markov_folder(work: Path, settings: dict[str, Any], seed: int = 0) -> tuple[Path, float, Any]:
    """A train/valid split of one long Markov text; returns the folder, the entropy rate and the chain."""
    from ..data import MarkovCorpus

    chain = MarkovCorpus(alphabet_size=settings["alphabet_size"], order=settings["order"],
                         concentration=settings["concentration"], seed=seed)
    rng = np.random.default_rng(seed + 100)
    train = chain.text(settings["chars"], rng)
    valid = chain.text(max(settings["chars"] // 10, 2_000), rng)
    return texts.write_split_folder(work / "markov", train, valid), chain.entropy_rate(), chain


def run(scale: str = "cpu", out_dir: str | Path = "docs/results/scaling", seeds: Sequence[int] = (0, 1, 2),
        work_dir: str | Path | None = None) -> dict[str, Any]:
    """Sweep the sizes on the real corpus and on the Markov corpus; fit; write results, plots and page."""
    from ..tokenizers import CharTokenizer

    config, out, clock, work = runner.start_run(scale, CONFIGS, out_dir, work_dir, "mp-scaling-")
    if config["corpus"] == "synthetic-english":
        text = texts.english_like_text(config["corpus_chars"] // 5, 0)
        cut = int(len(text) * 0.9)
        folder = texts.write_split_folder(work / "corpus", text[:cut], text[cut:])
        corpus_description = "generated pseudo-English (smoke test)"
    elif config["corpus"] == "tinyshakespeare":
        folder = texts.corpus_file("tinyshakespeare")
        corpus_description = "Tiny Shakespeare, characters, nanoGPT's 90/10 split"
    else:
        folder = Path(config["corpus"])
        corpus_description = config["corpus"]
    tokenizer = CharTokenizer()  # PretrainingDataset trains it on the train split
    real_points = _sweep(folder, tokenizer, config, seeds, work / "cache", "real", runner.device_for(scale))
    real_fit = _fit(real_points, config["bootstrap"], config["fit_starts"])

    markov_folder, entropy_rate, chain = _markov_folder(work, config["markov"])
    markov_points = _sweep(markov_folder, CharTokenizer(), config, seeds[:1], work / "cache", "markov",
                           runner.device_for(scale))
    markov_fit = _fit(markov_points, config["bootstrap"], config["fit_starts"])
    markov_fit["true_entropy_rate"] = entropy_rate

    results = {"corpus": corpus_description, "real": {"points": real_points, "fit": real_fit},
               "markov": {"points": markov_points, "fit": markov_fit, "settings": config["markov"],
                          "entropy_rate_nats": entropy_rate},
               "reference_alphas": {"kaplan_2020_alpha_N": KAPLAN_ALPHA_N, "chinchilla_2022_alpha": CHINCHILLA_ALPHA,
                                    "original_description_alpha": [0.35, 0.40]}}
    run_config = {"scale": scale, "shapes": [asdict(s) for s in config["shapes"]], "seq_len": config["seq_len"],
                  "plan": asdict(config["plan"]), "corpus": config["corpus"], "markov": config["markov"],
                  "bootstrap_resamples": config["bootstrap"]}
    _plot(results, out)
    wall = clock.elapsed()
    reporting.publish(out, NAME, scale, run_config, seeds, results, wall, _page)
    return results


def _plot(results: dict[str, Any], out: Path) -> None:
    fig, axes = plots.new_figure(1, 2, width=5.5)
    for ax, key, title in ((axes[0][0], "real", results["corpus"]), (axes[0][1], "markov", "Markov corpus (known H)")):
        points = results[key]["points"]
        fit = results[key]["fit"]
        ax.scatter([p["non_embedding_params"] for p in points], [p["val_loss"] for p in points], color="black",
                   zorder=3, label="runs")
        curve = fit["curve"]
        params = fit["power_law"]["params"]
        ax.plot(curve["n"], curve["fit"], color="tab:blue",
                label=f"fit: α={params['alpha']:.2f}, L∞={params['L_inf']:.2f}")
        if np.isfinite(curve["band_low"]).all():
            ax.fill_between(curve["n"], curve["band_low"], curve["band_high"], color="tab:blue", alpha=0.2,
                            label="95% bootstrap band")
        holdout = fit.get("holdout_largest", {})
        if "predicted_mean" in holdout:
            ax.scatter([holdout["largest_n"]], [holdout["predicted_mean"]], marker="x", color="tab:red", zorder=4,
                       label=f"held-out prediction ({100 * holdout['relative_error']:.1f}% off)")
        if key == "markov":
            ax.axhline(fit["true_entropy_rate"], color="tab:green", linestyle="--",
                       label=f"true entropy rate {fit['true_entropy_rate']:.3f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("non-embedding parameters N")
        ax.set_ylabel("validation loss (nats/char)")
        ax.set_title(title)
        ax.legend(fontsize=8)
    plots.save_figure(fig, out / "loss_vs_params.png")


def _page(results: dict[str, Any], config: dict[str, Any], seeds: Sequence[int], wall: float) -> str:
    real, markov = results["real"], results["markov"]
    rp, ri = real["fit"]["power_law"]["params"], real["fit"]["power_law"]["intervals"]
    mp, mi = markov["fit"]["power_law"]["params"], markov["fit"]["power_law"]["intervals"]
    plan = config["plan"]
    tokens = plan["steps"] * plan["batch_size"] * config["seq_len"]
    n_values = sorted({p["non_embedding_params"] for p in real["points"]})
    decades = np.log10(n_values[-1] / n_values[0])
    h = markov["entropy_rate_nats"]

    def interval(intervals: dict[str, Any], name: str, digits: int = 3) -> str:
        low, high = intervals.get(name, (float("nan"), float("nan")))
        return f"[{low:.{digits}g}, {high:.{digits}g}]"

    lines = [
        "# Experiment 2 — scaling laws", "",
        f"**Scale:** `{config['scale']}` · **seeds per size:** {list(seeds)} (Markov sweep: {list(seeds[:1])}) · "
        f"**wall time:** {wall / 60:.1f} min", "",
        "## What ran",
        f"- Corpus: {results['corpus']}; character tokenizer.",
        f"- {len(config['shapes'])} GPT shapes " + ", ".join(
            f"L{s['n_layer']}/H{s['n_head']}/C{s['n_embd']}" for s in config["shapes"]) +
        f": non-embedding N from {n_values[0]:,} to {n_values[-1]:,} ({decades:.2f} decades).",
        f"- Every run: {plan['steps']} steps × {plan['batch_size']} × {config['seq_len']} = {tokens:,} tokens, "
        f"AdamW lr {plan['learning_rate']} (same for every size), warmup {plan['warmup_steps']}, cosine to "
        f"{plan['min_lr_ratio']}×; loss = validation cross-entropy on {plan['eval_batches']} × {plan['eval_batch_size']} "
        "windows.",
        f"- Fit: `L(N) = (N_c/N)^α + L∞` with `scaling_fit.fit_power_law` (Huber on log residuals, multi-start L-BFGS); "
        f"{config['bootstrap_resamples']} bootstrap resamples of the runs (those with fewer than 3 distinct sizes "
        "skipped) give the 2.5–97.5 percentile intervals and the band.",
        f"- Synthetic check: order-{config['markov']['order']} Markov chain over {config['markov']['alphabet_size']} "
        f"symbols (Dirichlet {config['markov']['concentration']}), {config['markov']['chars']:,} training characters; "
        f"exact entropy rate H = {h:.4f} nats/char.", "",
        "## What came out", "",
        "| size | N (non-emb.) | val loss (real) | val loss (Markov) |", "|---|---|---|---|",
    ]
    for shape in dict.fromkeys(p["shape"] for p in real["points"]):
        real_losses = [p["val_loss"] for p in real["points"] if p["shape"] == shape]
        markov_losses = [p["val_loss"] for p in markov["points"] if p["shape"] == shape]
        n = next(p["non_embedding_params"] for p in real["points"] if p["shape"] == shape)
        lines.append(f"| {shape} | {n:,} | {statistics.format_interval(statistics.t_interval(real_losses), 4)} | "
                     f"{np.mean(markov_losses):.4f} |")
    holdout = real["fit"].get("holdout_largest", {})
    mholdout = markov["fit"].get("holdout_largest", {})
    lines += [
        "", "| fit | real corpus | Markov corpus |", "|---|---|---|",
        f"| α (power law + L∞) | {rp['alpha']:.3f} {interval(ri, 'alpha')} | {mp['alpha']:.3f} {interval(mi, 'alpha')} |",
        f"| L∞ (nats/char) | {rp['L_inf']:.3f} {interval(ri, 'L_inf')} | {mp['L_inf']:.3f} {interval(mi, 'L_inf')} "
        f"(true H = {h:.3f}) |",
        f"| N_c | {rp['N_c']:.3g} | {mp['N_c']:.3g} |",
        f"| α, Kaplan form (no L∞) | {real['fit']['kaplan']['params']['alpha']:.3f} | "
        f"{markov['fit']['kaplan']['params']['alpha']:.3f} |",
        f"| hold-out: predicted vs actual loss of the largest model | "
        f"{holdout.get('predicted_mean', float('nan')):.4f} vs {holdout.get('actual_mean', float('nan')):.4f} "
        f"({100 * holdout.get('relative_error', float('nan')):.1f}% error) | "
        f"{mholdout.get('predicted_mean', float('nan')):.4f} vs {mholdout.get('actual_mean', float('nan')):.4f} "
        f"({100 * mholdout.get('relative_error', float('nan')):.1f}% error) |",
        "", "![loss vs parameters](loss_vs_params.png)", "",
        "## Did the expectation reproduce?", "",
    ]
    in_range = 0.35 <= rp["alpha"] <= 0.40
    alpha_low, alpha_high = ri.get("alpha", (float("nan"), float("nan")))
    if alpha_low <= 0.35 and alpha_high >= 0.40:
        range_verdict = ("the interval contains that range but is so wide that the measurement neither confirms nor "
                         "excludes it: **not reproduced** (undetermined) at this scale")
    elif in_range:
        range_verdict = "inside that range: reproduced"
    else:
        range_verdict = "outside that range, and the interval excludes it: **not reproduced**"
    lines.append(
        f"- The original description expects α ≈ 0.35–0.40. We measured α = {rp['alpha']:.3f} {interval(ri, 'alpha')} "
        f"on {results['corpus'].split(',')[0]}: {range_verdict}. Kaplan et al. (2020) "
        f"report α_N = {KAPLAN_ALPHA_N} (their form has no L∞ term, so the exponent absorbs the flattening towards the "
        f"irreducible loss and comes out small; our Kaplan-form fit gives {real['fit']['kaplan']['params']['alpha']:.3f}); "
        f"Chinchilla (Hoffmann et al. 2022) report α = {CHINCHILLA_ALPHA} with an irreducible term E. Our runs differ from "
        "both in ways that move α: a fixed, tiny token budget (every model sees the same few hundred thousand tokens, so "
        "larger models are further from convergence — Kaplan's α_N is measured at convergence, Chinchilla fits N and D "
        "jointly), one learning rate for all sizes, characters instead of BPE, and models of thousands rather than "
        "millions of parameters.")
    markov_error = mp["L_inf"] - h
    lines.append(
        f"- Synthetic check: the fitted L∞ = {mp['L_inf']:.3f} vs the true entropy rate H = {h:.3f} "
        f"({markov_error:+.3f} nats). L∞ of a finite-budget sweep is the loss an infinitely large model would reach "
        "*with this token budget*, which lies above H by whatever the budget leaves unlearned; "
        + ("the fit recovers H within its bootstrap interval." if mi.get("L_inf", (np.inf, -np.inf))[0] <= h <=
           mi.get("L_inf", (np.inf, -np.inf))[1] else "H lies outside the fit's bootstrap interval here, so the fit's "
           "L∞ should not be read as the irreducible loss of the data."))
    lines.append(f"- Extrapolation: fitting all but the largest model predicted its loss with "
                 f"{100 * holdout.get('relative_error', float('nan')):.1f}% relative error (real corpus).")
    lines += ["", "## Caveats",
              "- Tiny models on 2 CPU cores with a fixed small budget; the original description's sizes (25M–200M, "
              "WikiText-103, 10K steps) are `--scale gpu` and were not run here.",
              "- One learning rate for every size; a per-size tuned rate would change α.",
              f"- Seeds: {len(seeds)} per size on the real corpus (every run is a point of the fit; the bootstrap "
              "resamples runs), one on the Markov corpus. Runs are seeded, but float32 sums depend on the BLAS thread "
              "count, so a rerun on another machine reproduces the numbers only approximately."]
    return "\n".join(lines)
