"""Q1's claims and the rules that judge them, written down before any run (experiment: :mod:`.next_token`).

Every rule compares a 95% interval with a margin fixed here. The intervals come from
:func:`.statistics.seeds_and_sample_interval`: the Student-t interval over seeds widened by the evaluation
sample's standard error, so a verdict accounts for both the training seeds and which windows the
validation split happens to hold. Three verdicts, decided by code from the measured intervals:

* ``below m``: reproduced when the interval's upper end is below m, not reproduced when its lower end is
  above m, undetermined otherwise;
* ``above m``: the mirror image;
* ``within ±m`` (an equivalence test: "no difference worth m"): reproduced when the whole interval lies
  inside (−m, m), not reproduced when it lies wholly outside, undetermined when it straddles an edge.

A claim made of several parts (one per Markov order) is reproduced when every part is, not reproduced when
any part is not, and undetermined otherwise; an undetermined claim says how many seeds would resolve it.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from .statistics import format_interval

QUESTION = "Q1 why next-token prediction works"
#: nats per token: "reaches H_k" means the model's excess over the true chain stays below this.
REACH_MARGIN = 0.02
#: nats per token: a context difference smaller than this is "no improvement", larger is "clearly helps".
CONTEXT_MARGIN = 0.02
#: Tiny Shakespeare: positions grouped on a log scale, [start, stop); each group must beat the one before.
POSITION_BINS = ((0, 1), (1, 2), (2, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 128), (128, 256))

REPRODUCED, NOT_REPRODUCED, UNDETERMINED = "reproduced", "not reproduced", "undetermined"


def below(interval: dict[str, float], margin: float) -> str:
    if interval["high"] < margin:
        return REPRODUCED
    return NOT_REPRODUCED if interval["low"] > margin else UNDETERMINED


def above(interval: dict[str, float], margin: float) -> str:
    if interval["low"] > margin:
        return REPRODUCED
    return NOT_REPRODUCED if interval["high"] < margin else UNDETERMINED


def within(interval: dict[str, float], margin: float) -> str:
    if -margin < interval["low"] and interval["high"] < margin:
        return REPRODUCED
    return NOT_REPRODUCED if interval["high"] < -margin or interval["low"] > margin else UNDETERMINED


def combine(verdicts: Sequence[str]) -> str:
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return NOT_REPRODUCED if NOT_REPRODUCED in verdicts else UNDETERMINED


def seeds_to_resolve(interval: dict[str, float], margins: Sequence[float]) -> str:
    """How many seeds would move the interval off the nearest margin, if more seeds can do it at all.

    The seeds' half-width shrinks as t/√n; the evaluation sample's part does not (it needs a longer split).
    """
    gap = min(abs(interval["mean"] - m) for m in margins)
    sample_part = 1.96 * interval.get("sample_se", 0.0)
    seeds, seed_half = interval.get("n", 0), interval.get("seed_half_width", float("nan"))
    if gap < 0.1 * max(sample_part, abs(seed_half) if math.isfinite(seed_half) else 0.0, 1e-9):
        return (f"none within reach: the mean lies {gap:.4f} nats from the margin, so no affordable number of seeds "
                "or validation length moves the interval off it")
    if not (seeds and math.isfinite(seed_half)) or sample_part >= gap:
        return (f"the evaluation sample alone spans ±{sample_part:.3f} nats around a mean {gap:.3f} from the "
                "margin: a validation split about "
                f"{max(2, math.ceil((sample_part / gap) ** 2 * 1.5))}× longer, and more seeds")
    needed = math.ceil(seeds * (seed_half / math.sqrt(gap ** 2 - sample_part ** 2)) ** 2 * 1.2) + 1
    return f"about {max(needed, seeds + 1)} seeds (now {seeds}) at the same budget"


# ----- the claims, each with its rule --------------------------------------------------------------------
CLAIMS: dict[str, dict[str, str]] = {
    "q1-markov-loss-reaches-entropy-rate": {
        "claim": "A small GPT trained by next-token prediction on a Markov chain of order k (k = 1, 2, 3) reaches "
                 "the chain's entropy rate H_k, the lowest loss any predictor can have.",
        "source": "ours (issue 14); cross-entropy is minimised by the true conditional distribution, so its floor "
                  "is the source's entropy rate (Shannon 1948)",
        "rule": f"for every k: excess = model loss − the true chain's loss on the same validation targets (every "
                f"target predicted from at least k tokens, window positions p ≥ k−1; the chain's loss there estimates "
                f"H_k without bias); reproduced if the 95% interval (seeds, widened by the evaluation sample) lies "
                f"below {REACH_MARGIN} nats",
    },
    "q1-attention-window-stops-helping-at-order": {
        "claim": "Cutting a trained one-layer GPT's attention to its last j tokens at evaluation: on an order-k "
                 "chain the loss improves up to j = k and not beyond.",
        "source": "ours (issue 14)",
        "rule": f"one layer, so that a window of j means the prediction sees exactly tokens t−j+1..t (j = 1: the "
                f"current token only); loss(j) on the same targets (positions ≥ 4 of each window) for j = 1..5; "
                f"for every k: reproduced if loss(j=k) − loss(j=k+1) lies within ±{CONTEXT_MARGIN} nats and "
                f"loss(j=k−1) − loss(j=k) lies above {CONTEXT_MARGIN} (for k = 1, loss(j=0) is the chain's exact "
                f"no-context loss on the same targets: masking cannot hide the current token, which reaches the "
                f"output through the residual stream), both as 95% intervals over seeds widened by the sample",
    },
    "q1-markov-context-use-grows-until-order": {
        "claim": "With the whole causal context, the loss at window position p (p + 1 tokens seen) falls as p grows "
                 "until p + 1 = k, and is flat after.",
        "source": "ours (issue 14)",
        "rule": f"for every k: for k ≥ 2, loss(p=k−2) − loss(p=k−1) above {CONTEXT_MARGIN} nats; and the excess over "
                f"the true chain's loss at p = k−1 minus the mean excess over positions p ≥ k within "
                f"±{CONTEXT_MARGIN} nats (the chain's own loss on the same targets removes the sample's noise); 95% "
                f"intervals over seeds widened by the sample",
    },
    "q1-text-context-use-grows-with-position": {
        "claim": "On Tiny Shakespeare the GPT's loss falls as its position in the window (the context it has seen) "
                 "grows, all the way to the end of the window.",
        "source": "ours (issue 14); cf. Kaplan et al. 2020, per-token loss against position in the context",
        "rule": "positions grouped as 0, 1, 2–3, 4–7, 8–15, ... up to the window's end; reproduced if every group's "
                "mean loss is below the previous group's, each difference's 95% interval (seeds, widened by the "
                "sample) above 0",
    },
    "q1-gpt-beats-counting-and-compressing": {
        "claim": "On Tiny Shakespeare a GPT trained by next-token prediction beats the best 5-gram count model and "
                 "the best compressor on the same validation split.",
        "source": "nanoGPT README (shakespeare-char: 6 layers, 384 wide, 5,000 iterations on a GPU, validation "
                  "loss 1.4697) beside this split's yardsticks",
        "rule": "reproduced if the upper end of the 95% t-interval over seeds of the GPT's whole-split loss is below "
                "both the Kneser-Ney/Witten-Bell 5-gram's (the better) and bz2/lzma's (the better) loss on the same "
                "split; not reproduced if its lower end is above either",
    },
}


def record(claim_id: str, measured: str, verdict: str, page: str, power: str | None = None) -> dict[str, Any]:
    """One claims.json record of :data:`CLAIMS` ``claim_id`` with what was measured and the verdict."""
    entry = {"id": claim_id, "question": QUESTION, **CLAIMS[claim_id], "measured": measured, "verdict": verdict,
             "page": page}
    if verdict == UNDETERMINED:
        entry["power"] = power or "more seeds and a longer validation split"
    return entry


# ----- verdicts from the measured intervals -------------------------------------------------------------
def _judged(parts: Sequence[tuple[str, str, dict[str, float], Sequence[float]]]) -> tuple[str, str, str | None]:
    """(measured text, combined verdict, power) from (label, verdict, interval, margins) parts."""
    measured = "; ".join(f"{label} {format_interval(interval, signed=True)}" for label, _, interval, _ in parts)
    verdict = combine([v for _, v, _, _ in parts])
    unresolved = [(label, interval, margins) for label, v, interval, margins in parts if v == UNDETERMINED]
    power = None
    if verdict == UNDETERMINED:
        power = "; ".join(f"{label}: {seeds_to_resolve(interval, margins)}" for label, interval, margins in unresolved)
    return measured, verdict, power


def claim_records(results: dict[str, Any], config: dict[str, Any], page: str) -> list[dict[str, Any]]:
    """This question's claims.json records: each claim of :data:`CLAIMS` judged by its rule."""
    intervals, markov = results["intervals"], results["markov"]
    orders = sorted(markov, key=int)
    m, r = REACH_MARGIN, CONTEXT_MARGIN
    plan, shape = config["markov_plan"], config["markov_shape"]
    seeds = len(next(iter(markov.values()))["runs"])
    budget = (f"{seeds} seeds per chain, a {shape['n_layer']}-layer {shape['n_embd']}-wide GPT, {plan['steps']} steps × "
              f"{plan['batch_size']} × {config['markov_seq_len']} tokens")
    records = []

    reach = [(f"k={k}: excess", below(intervals["markov"][k]["reach"], m), intervals["markov"][k]["reach"], (m,))
             for k in orders]
    measured, verdict, power = _judged(reach)
    entropy = ", ".join(f"H_{k} = {markov[k]['entropy_rate']:.3f}" for k in orders)
    records.append(record("q1-markov-loss-reaches-entropy-rate", f"{measured} nats/token ({entropy}; {budget})",
                          verdict, page, power))

    window = []
    for k in orders:
        evidence = intervals["markov"][k]
        window.append((f"k={k}: loss(j={k})−loss(j={int(k) + 1})", within(evidence["window_stop"], r),
                       evidence["window_stop"], (-r, r)))
        window.append((f"loss(j={int(k) - 1})−loss(j={k})", above(evidence["window_help"], r), evidence["window_help"],
                       (r,)))
    measured, verdict, power = _judged(window)
    records.append(record("q1-attention-window-stops-helping-at-order", f"{measured} nats ({budget})", verdict, page,
                          power))

    position = []
    for k in orders:
        evidence = intervals["markov"][k]
        if "position_grow" in evidence:
            position.append((f"k={k}: loss(p={int(k) - 2})−loss(p={int(k) - 1})", above(evidence["position_grow"], r),
                             evidence["position_grow"], (r,)))
        position.append((f"k={k}: excess(p={int(k) - 1})−excess(p≥{k})", within(evidence["position_flat"], r),
                         evidence["position_flat"], (-r, r)))
    measured, verdict, power = _judged(position)
    records.append(record("q1-markov-context-use-grows-until-order", f"{measured} nats ({budget})", verdict, page,
                          power))

    text = results["text"]
    bins = [f"{a}" if b == a + 1 else f"{a}–{b - 1}" for a, b in text["bins"]]
    steps = [(f"{bins[i]}→{bins[i + 1]}", above(interval, 0.0), interval, (0.0,))
             for i, interval in enumerate(intervals["text"]["bin_steps"])]
    measured, verdict, power = _judged(steps)
    text_plan, text_shape = config["text_plan"], config["text_shape"]
    text_budget = (f"{seeds} seeds, a {text_shape['n_layer']}-layer {text_shape['n_embd']}-wide GPT, "
                   f"{text_plan['steps']} steps × {text_plan['batch_size']} × {config['text_seq_len']} characters")
    records.append(record("q1-text-context-use-grows-with-position",
                          f"loss drop between position groups {measured} nats ({text_budget})", verdict, page, power))

    yardsticks = {y["name"]: y["nats_per_token"] for y in text["yardsticks"]}
    count = min((name for name in yardsticks if name.endswith("5-gram")), key=yardsticks.get)
    compressor = min((name for name in yardsticks if "|" in name), key=yardsticks.get)
    gpt = intervals["text"]["whole_split_loss"]
    if gpt["high"] < min(yardsticks[count], yardsticks[compressor]):
        verdict = REPRODUCED
    elif gpt["low"] > yardsticks[count] or gpt["low"] > yardsticks[compressor]:
        verdict = NOT_REPRODUCED
    else:
        verdict = UNDETERMINED
    gap = {"mean": gpt["mean"], "low": gpt["low"], "high": gpt["high"], "n": gpt["n"],
           "seed_half_width": gpt["high"] - gpt["mean"], "sample_se": 0.0}
    measured = (f"GPT {gpt['mean']:.3f} [{gpt['low']:.3f}, {gpt['high']:.3f}] nats/char vs {count} "
                f"{yardsticks[count]:.3f} and {compressor} {yardsticks[compressor]:.3f} ({text_budget})")
    power = seeds_to_resolve(gap, (yardsticks[count], yardsticks[compressor])) if verdict == UNDETERMINED else None
    records.append(record("q1-gpt-beats-counting-and-compressing", measured, verdict, page, power))
    return records
