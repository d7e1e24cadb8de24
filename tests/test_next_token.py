"""Experiment Q1 (next-token prediction) and what it stands on: exact context entropies of an order-k chain,
the attention window of a GPT, per-position target losses, the claims' rules, and a seconds-long smoke run."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from minipretrain.data import MarkovCorpus
from minipretrain.evaluation.context_use import target_losses, target_windows, window_starts
from minipretrain.experiments import claims, next_token
from minipretrain.experiments import next_token_rules as rules
from minipretrain.experiments.statistics import seeds_and_sample_interval
from minipretrain.models import GPT, GPTConfig


@pytest.fixture(autouse=True)
def no_mirror(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The smoke run must not read the shared corpora: no mirror, and an empty data folder."""
    monkeypatch.delenv("MINIPRETRAIN_DATA_MIRROR", raising=False)
    monkeypatch.setenv("MINIPRETRAIN_DATA_DIR", str(tmp_path / "no-data"))


def _plug_in_entropy(symbols: np.ndarray, context_length: int, alphabet_size: int) -> float:
    """H(next | previous j symbols) counted from a sample: Σ c(h x)/N · −log(c(h x)/c(h))."""
    j = context_length
    keys = np.zeros(len(symbols) - j, dtype=np.int64)
    for offset in range(j + 1):  # the (j+1)-gram as a base-V number, oldest symbol first
        keys = keys * alphabet_size + symbols[offset:len(symbols) - j + offset]
    grams, counts = np.unique(keys, return_counts=True)
    context_totals = np.bincount(grams // alphabet_size, weights=counts)
    p = counts / counts.sum()
    return float(-(p * np.log(counts / context_totals[grams // alphabet_size])).sum())


@pytest.mark.parametrize("order", [1, 2, 3])
def test_context_entropies_of_an_order_k_chain_match_counts_on_a_long_sample(order: int) -> None:
    chain = MarkovCorpus(alphabet_size=4, order=order, concentration=0.5, seed=0)
    symbols = chain.sample_symbols(1, 400_000, np.random.default_rng(order))[0]
    # Sampling error of a plug-in entropy over 4e5 draws: ~1e-3 (sd of -log p / sqrt(N)); bias ~ contexts/N.
    for j in range(order + 2):
        assert chain.context_entropy(j) == pytest.approx(_plug_in_entropy(symbols, j, 4), abs=5e-3), j
    assert chain.context_entropy(order) == chain.context_entropy(order + 3) == chain.entropy_rate()
    np.testing.assert_allclose(chain.conditional_table(order), chain.transition, rtol=1e-12)
    np.testing.assert_allclose(chain.conditional_table(0)[0], np.bincount(symbols, minlength=4) / len(symbols),
                               atol=4e-3)
    # Less context can only cost: H(X | j) never rises with j.
    assert all(np.diff([chain.context_entropy(j) for j in range(order + 1)]) <= 1e-12)
    with pytest.raises(ValueError):
        chain.conditional_table(order + 1)


def test_the_oracle_losses_are_the_chains_own_log_likelihood() -> None:
    chain = MarkovCorpus(alphabet_size=4, order=3, concentration=0.5, seed=2)
    symbols = chain.sample_symbols(1, 500, np.random.default_rng(0))[0]
    losses = next_token._oracle_losses(chain, symbols, 3)
    assert np.isnan(losses[:3]).all()
    context, stepped = 0, []  # the chain's law, one symbol at a time: its context, then its next symbol
    for step, symbol in enumerate(symbols):
        if step >= 3:
            stepped.append(-np.log(chain.transition[context, symbol]))
        context = (context * chain.alphabet_size) % chain.num_contexts + symbol
    np.testing.assert_allclose(losses[3:], stepped, rtol=1e-12)
    np.testing.assert_allclose(losses[3:], -chain.log_likelihood(symbols[None])[0], rtol=1e-12)
    marginal = chain.conditional_table(0)[0]
    np.testing.assert_allclose(next_token._oracle_losses(chain, symbols, 0), -np.log(marginal[symbols]))


def _gpt(n_layer: int = 1, block_size: int = 8) -> GPT:
    return GPT(GPTConfig(vocab_size=7, n_layer=n_layer, n_head=2, n_embd=16, block_size=block_size, seed=3,
                         dtype="float64"))


def test_a_window_at_least_the_sequence_is_the_full_causal_model() -> None:
    model = _gpt(n_layer=2)
    ids = np.random.default_rng(0).integers(0, 7, size=(3, 8))
    full = model(ids).numpy()
    for window in (8, 9, 50):
        np.testing.assert_array_equal(model(ids, attention_window=window).numpy(), full)
    assert not np.allclose(model(ids, attention_window=2).numpy(), full)


@pytest.mark.parametrize("window", [1, 2, 3])
def test_with_one_layer_a_window_of_j_sees_exactly_the_last_j_tokens(window: int) -> None:
    model = _gpt(n_layer=1)
    rng = np.random.default_rng(window)
    ids = rng.integers(0, 7, size=(1, 8))
    t = 6
    base = model(ids, attention_window=window).numpy()[0, t]
    for changed in range(t + 1):
        other = ids.copy()
        other[0, changed] = (other[0, changed] + 1) % 7
        moved = not np.allclose(model(other, attention_window=window).numpy()[0, t], base, rtol=0, atol=1e-13)
        assert moved == (changed > t - window), (changed, window)


def test_with_two_layers_a_window_compounds() -> None:
    # L layers with window j reach back L·(j − 1) tokens: two layers, window 2: tokens t−2..t.
    model = _gpt(n_layer=2)
    ids = np.random.default_rng(9).integers(0, 7, size=(1, 8))
    t = 6
    base = model(ids, attention_window=2).numpy()[0, t]
    reach = []
    for changed in range(t + 1):
        other = ids.copy()
        other[0, changed] = (other[0, changed] + 1) % 7
        if not np.allclose(model(other, attention_window=2).numpy()[0, t], base, rtol=0, atol=1e-13):
            reach.append(changed)
    assert reach == [t - 2, t - 1, t]


def test_target_losses_are_the_clm_objectives_losses_and_split_over_ranks() -> None:
    from minipretrain.data.dataset import Batch
    from minipretrain.objectives import CausalLanguageModeling

    model = _gpt(n_layer=2)
    ids = np.random.default_rng(1).integers(0, 7, size=3 * 8 + 5)
    assert window_starts(len(ids), 8).tolist() == [0, 8, 16]  # the partial last window is left out
    losses = target_losses(model, ids, 8, batch_size=2)
    inputs, targets = target_windows(ids, 8)
    windows = np.concatenate([inputs, targets[:, -1:]], axis=1)
    objective = CausalLanguageModeling(model)
    prepared = objective.prepare(Batch(windows, np.ones_like(windows, dtype=bool), np.zeros_like(windows, dtype=bool)))
    loss, _ = objective.loss(model, prepared)
    assert losses.mean() == pytest.approx(loss.item(), rel=1e-10)

    class Rank:  # two simulated ranks: each fills its own batches; their sum is the whole matrix
        def __init__(self, rank: int) -> None:
            self.rank, self.world_size = rank, 2

        def allreduce_sum(self, buffer: np.ndarray) -> np.ndarray:
            return buffer

    halves = [target_losses(model, ids, 8, batch_size=1, comm=Rank(r)) for r in (0, 1)]
    np.testing.assert_allclose(halves[0] + halves[1], losses, rtol=1e-12)
    assert not halves[0][1].any() and not halves[1][0].any()


def test_target_losses_on_the_device_equal_the_host_ones(device: str) -> None:
    model = _gpt(n_layer=1)
    ids = np.random.default_rng(4).integers(0, 7, size=30)
    expected = target_losses(model, ids, 8, attention_window=2)
    model.to(device)
    np.testing.assert_allclose(target_losses(model, ids, 8, attention_window=2), expected, rtol=1e-12)


def test_an_interval_covers_the_seeds_and_the_evaluation_sample() -> None:
    same_seeds = np.tile(np.array([0.0, 1.0, 2.0, 3.0]), (3, 1))  # three identical seeds
    interval = seeds_and_sample_interval(same_seeds)
    se = np.std([0, 1, 2, 3], ddof=1) / 2
    assert interval["seed_half_width"] == pytest.approx(0.0)
    assert interval["high"] - interval["mean"] == pytest.approx(1.959964 * se, rel=1e-5)


def test_the_rules_verdicts() -> None:
    def iv(low: float, high: float) -> dict:
        return {"mean": (low + high) / 2, "low": low, "high": high, "n": 5, "seed_half_width": (high - low) / 2,
                "sample_se": 0.0}

    assert rules.below(iv(0.0, 0.01), 0.02) == rules.REPRODUCED
    assert rules.below(iv(0.03, 0.05), 0.02) == rules.NOT_REPRODUCED
    assert rules.below(iv(0.01, 0.03), 0.02) == rules.UNDETERMINED
    assert rules.above(iv(0.03, 0.05), 0.02) == rules.REPRODUCED
    assert rules.within(iv(-0.01, 0.01), 0.02) == rules.REPRODUCED
    assert rules.within(iv(0.03, 0.04), 0.02) == rules.NOT_REPRODUCED
    assert rules.within(iv(0.01, 0.03), 0.02) == rules.UNDETERMINED
    assert rules.combine([rules.REPRODUCED, rules.UNDETERMINED]) == rules.UNDETERMINED
    assert rules.combine([rules.NOT_REPRODUCED, rules.UNDETERMINED]) == rules.NOT_REPRODUCED
    # An interval of half-width 0.02 around 0.03 needs about (0.02 / 0.01)^2 = 4x the seeds to clear 0.02.
    assert "seeds" in rules.seeds_to_resolve(iv(0.01, 0.05), (0.02,))


def test_smoke_run_writes_the_page_plots_results_and_valid_claims(tmp_path: Path) -> None:
    results_root = tmp_path / "results"
    (results_root / "other").mkdir(parents=True)
    (results_root / "other" / "README.md").write_text("# Other\n", encoding="utf-8")
    other = {"id": "other-claim", "question": "Q9 other", "claim": "x", "source": "ours", "rule": "r",
             "measured": "1.0", "verdict": "reproduced", "page": "other/README.md"}
    (results_root / "claims.json").write_text(json.dumps([other]), encoding="utf-8")
    (results_root / "README.md").write_text(f"# Results\n{claims.START_MARKER}\n{claims.END_MARKER}\n", encoding="utf-8")
    out = results_root / "next_token"
    results = next_token.run("smoke", out_dir=out, seeds=[0, 1], work_dir=tmp_path / "work")

    assert (out / "README.md").read_text(encoding="utf-8").startswith("# Experiment Q1")
    for name in ("markov_windows.png", "markov_positions.png", "text_positions.png", "training_curves.png"):
        assert (out / name).stat().st_size > 1000, name
    payload = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert payload["scale"] == "smoke" and payload["seeds"] == [0, 1]
    chain = payload["results"]["markov"]["3"]
    assert len(chain["runs"]) == 2 and set(chain["runs"][0]["loss_by_window"]) == {"1", "2", "3", "4", "5"}
    assert len(chain["runs"][0]["loss_by_position"]) == next_token.CONFIGS["smoke"]["markov_seq_len"]
    assert chain["entropy_rate"] == pytest.approx(MarkovCorpus(alphabet_size=4, order=3, concentration=0.5,
                                                               seed=0).entropy_rate())
    assert all(math.isfinite(y["nats_per_token"]) for y in payload["results"]["text"]["yardsticks"])

    written = claims.load_claims(results_root / "claims.json")  # validates every record and that pages exist
    assert [c.id for c in written] == ["other-claim", *rules.CLAIMS]
    assert all(c.page == "next_token/README.md" for c in written[1:])
    assert [c.verdict for c in written[1:]] == [r["verdict"] for r in results["claims"]]
    readme = (results_root / "README.md").read_text(encoding="utf-8")
    assert all(claim_id in readme for claim_id in rules.CLAIMS) and "other-claim" in readme
    # A second run replaces this question's records and keeps the other question's.
    next_token.run("smoke", out_dir=out, seeds=[0, 1], work_dir=tmp_path / "work")
    assert [c.id for c in claims.load_claims(results_root / "claims.json")] == ["other-claim", *rules.CLAIMS]
