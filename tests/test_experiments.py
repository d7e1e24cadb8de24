"""Seconds-long smoke runs of the four experiments (synthetic data only) and their shared helpers."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

from minipretrain.experiments import clm_vs_mlm, data_quality, learning_curves, scaling, statistics, texts
from minipretrain.experiments.cli import EXPERIMENTS, add_parser


@pytest.fixture(autouse=True)
def no_mirror(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Smoke runs must not read the shared corpora: no mirror, and an empty data folder."""
    monkeypatch.delenv("MINIPRETRAIN_DATA_MIRROR", raising=False)
    monkeypatch.setenv("MINIPRETRAIN_DATA_DIR", str(tmp_path / "no-data"))


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _check_outputs(out: Path, pngs: list[str]) -> dict:
    assert (out / "README.md").read_text(encoding="utf-8").startswith("# Experiment")
    for name in pngs:
        assert (out / name).stat().st_size > 1000, f"{name} missing or empty"
    payload = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert payload["scale"] == "smoke" and payload["wall_time_s"] > 0
    assert payload["environment"]["numpy"] == np.__version__
    return payload


def test_t_interval_matches_the_textbook_value() -> None:
    summary = statistics.t_interval([1.0, 2.0, 3.0])
    # mean 2, s = 1, t_{0.975, 2} = 4.303: half-width 4.303 / sqrt(3) = 2.484
    assert summary["mean"] == pytest.approx(2.0)
    assert summary["high"] - summary["mean"] == pytest.approx(2.484, abs=1e-3)
    assert math.isnan(statistics.t_interval([1.0])["low"])
    assert statistics.t_interval([])["n"] == 0


def test_smooth_is_a_trailing_mean() -> None:
    assert statistics.smooth([1.0, 3.0, 5.0, 7.0], 2).tolist() == [1.0, 2.0, 4.0, 6.0]


def test_clm_vs_mlm_smoke(tmp_path: Path) -> None:
    results = clm_vs_mlm.run("smoke", out_dir=tmp_path / "out", seeds=[0, 1], work_dir=tmp_path / "work")
    payload = _check_outputs(tmp_path / "out", ["loss_curves.png", "probe_accuracy.png"])
    summary = payload["results"]["summary"]
    for objective in ("clm", "mlm"):
        assert _finite(summary[objective]["final_val_loss"]["mean"])
        assert len(results["runs"][objective]) == 2
        run = results["runs"][objective][0]
        assert [p["step"] for p in run["probes"]] == clm_vs_mlm.CONFIGS["smoke"]["probe_steps"]
        assert 0.0 <= run["probes"][-1]["synthetic"]["test_accuracy"] <= 1.0
        # Each run starts near log(V): the loss at step 0 is evaluated before any update.
        assert run["evals"][0]["step"] == 0
    # Same token budget for both objectives.
    assert results["runs"]["clm"][0]["train"][-1]["tokens"] == results["runs"]["mlm"][0]["train"][-1]["tokens"]
    assert results["parameters"]["clm"]["non_embedding"] > 0
    assert summary["mlm"]["below_unigram"]["mean"] == pytest.approx(
        summary["mlm"]["final_val_loss"]["mean"] - results["unigram_val_loss"])
    # The page can be rebuilt from results.json alone.
    (tmp_path / "out" / "README.md").unlink()
    clm_vs_mlm.render(tmp_path / "out")
    assert "Did the expectation reproduce?" in (tmp_path / "out" / "README.md").read_text(encoding="utf-8")


def test_unigram_loss_is_the_cross_entropy_of_token_frequencies() -> None:
    train = np.array([0, 0, 0, 1])
    # add-one smoothing over a vocabulary of 3: p = (4/7, 2/7, 1/7)
    assert clm_vs_mlm.unigram_loss(train, np.array([0, 1]), 3) == pytest.approx(-(np.log(4 / 7) + np.log(2 / 7)) / 2)
    # ignored ids leave both counts: only the 0 is scored
    assert clm_vs_mlm.unigram_loss(train, np.array([0, 2]), 3, ignore=[2]) == pytest.approx(-np.log(4 / 7))


def test_scaling_smoke(tmp_path: Path) -> None:
    results = scaling.run("smoke", out_dir=tmp_path / "out", seeds=[0], work_dir=tmp_path / "work")
    _check_outputs(tmp_path / "out", ["loss_vs_params.png"])
    sizes = sorted({p["non_embedding_params"] for p in results["real"]["points"]})
    assert len(sizes) >= 6
    for key in ("real", "markov"):
        params = results[key]["fit"]["power_law"]["params"]
        assert all(_finite(params[name]) for name in ("alpha", "N_c", "L_inf"))
        assert all(_finite(p["val_loss"]) and p["val_loss"] > 0 for p in results[key]["points"])
    assert 0 < results["markov"]["entropy_rate_nats"] < math.log(scaling.CONFIGS["smoke"]["markov"]["alphabet_size"])


def test_data_quality_smoke(tmp_path: Path) -> None:
    results = data_quality.run("smoke", out_dir=tmp_path / "out", seeds=[0], work_dir=tmp_path / "work")
    _check_outputs(tmp_path / "out", ["quality_comparison.png"])
    conditions = results["summary"]
    assert {"high (clean)", "medium (web, filtered)", "low (web, unfiltered)"} <= set(conditions)
    assert any(name.startswith("clean + noise") for name in conditions)
    for entry in conditions.values():
        assert _finite(entry["clean_eval_perplexity"]["mean"]) and entry["clean_eval_perplexity"]["mean"] > 1
        assert 0.0 <= entry["probe_accuracy"]["mean"] <= 1.0
    for report in results["removal_reports"].values():
        for name in data_quality.FILTER_ORDER:
            assert 0.0 <= report[name]["kept_fraction"] <= 1.0


def test_filter_pipeline_removes_markup_heavy_documents() -> None:
    clean = texts.english_like_text(120, 0)
    junk = "<div><td>" * 40 + "QUJDREVG" * 60
    kept, removed = data_quality.filter_documents([clean, junk, clean])
    # The junk is filtered and the copy deduplicated; C4 may rewrite the clean text's lines, never add any.
    assert len(kept) == 1 and "QUJD" not in kept[0] and set(kept[0].splitlines()) <= set(clean.splitlines())
    assert removed["exact_dedup"] == 1 and sum(removed.values()) == 2


def test_learning_curves_smoke(tmp_path: Path) -> None:
    results = learning_curves.run("smoke", out_dir=tmp_path / "out", seeds=[0, 1], work_dir=tmp_path / "work")
    _check_outputs(tmp_path / "out", ["tracked_run.png", "schedules.png"])
    steps = results["tracked_run"]["steps"]
    assert len(steps) == learning_curves.CONFIGS["smoke"]["plan"].steps
    for record in steps:
        assert record["grad_norm"] > 0
        assert all(v > 0 for v in record["layer_grad_norm"].values())
        assert all(0 < v < 1 for v in record["update_to_weight"].values())
    # The per-group norms recombine into the global norm (clipping undone).
    first = steps[0]
    assert math.sqrt(sum(v ** 2 for v in first["layer_grad_norm"].values())) == pytest.approx(first["grad_norm"], rel=1e-4)
    assert set(results["summary"]) == set(learning_curves.schedules(learning_curves.CONFIGS["smoke"]["plan"]))


def test_cli_registers_every_experiment() -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["experiment", "scaling", "--scale", "smoke", "--seeds", "2", "--out", "x"])
    assert (args.name, args.scale, args.seeds, args.out) == ("scaling", "smoke", 2, "x")
    assert set(EXPERIMENTS) == {"clm-vs-mlm", "scaling", "data-quality", "learning-curves", "next-token"}
    with pytest.raises(SystemExit):
        parser.parse_args(["experiment", "nope"])


def test_results_json_layout_is_compact_and_keeps_every_value() -> None:
    from minipretrain.experiments.reporting import dumps_compact

    payload = {"curve": [{"step": i, "loss": 1.0 / (i + 1)} for i in range(3)], "note": "a  [b] {c}",
               "nested": {"values": [1, 2, [3, 4]], "empty": []}, "strings": ["x  [y", "z]  w"]}
    text = dumps_compact(payload)
    assert json.loads(text) == payload
    assert '{"step": 0, "loss": 1.0}' in text  # a flat record sits on one line
    assert len(text.splitlines()) < len(json.dumps(payload, indent=1).splitlines())
