"""Tests of the scaling-law fitters on synthetic measurements with known parameters."""

from __future__ import annotations

import numpy as np
import pytest

from minipretrain.experiments.scaling_fit import (
    bootstrap,
    fit_chinchilla,
    fit_kaplan,
    fit_power_law,
    holdout_largest_model,
)

# Hoffmann et al. (2022), approach 3.
CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def chinchilla_loss(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    p = CHINCHILLA
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


@pytest.fixture(scope="module")
def chinchilla_grid() -> tuple[np.ndarray, np.ndarray]:
    """A realistic sweep: 70M..10B parameters x 1B..300B tokens (Chinchilla's range), 7 x 7 runs."""
    n, d = np.meshgrid(np.logspace(np.log10(7e7), 10, 7), np.logspace(9, np.log10(3e11), 7))
    return n.ravel(), d.ravel()


def test_chinchilla_recovers_every_parameter_within_2_percent(chinchilla_grid):
    n, d = chinchilla_grid
    fit = fit_chinchilla(n, d, chinchilla_loss(n, d), n_starts=4)
    for name, truth in CHINCHILLA.items():
        assert fit.params[name] == pytest.approx(truth, rel=0.02), name


def test_chinchilla_recovers_parameters_under_small_noise(chinchilla_grid):
    # 0.1% multiplicative noise is below the run-to-run spread of real sweeps; the exponents and E are
    # well determined by 49 points (2%), the prefactors A, B trade off against them so we allow 10%.
    n, d = chinchilla_grid
    rng = np.random.default_rng(1)
    loss = chinchilla_loss(n, d) * np.exp(rng.normal(0.0, 1e-3, size=n.shape))
    fit = fit_chinchilla(n, d, loss, n_starts=4)
    for name in ("E", "alpha", "beta"):
        assert fit.params[name] == pytest.approx(CHINCHILLA[name], rel=0.02), name
    for name in ("A", "B"):
        assert fit.params[name] == pytest.approx(CHINCHILLA[name], rel=0.10), name


def test_chinchilla_fit_is_robust_to_an_outlier(chinchilla_grid):
    # Huber on log-residuals: one diverged run at 3x the loss barely moves the fit.
    n, d = chinchilla_grid
    loss = chinchilla_loss(n, d)
    loss[5] *= 3.0
    fit = fit_chinchilla(n, d, loss, n_starts=4)
    for name, truth in CHINCHILLA.items():
        assert fit.params[name] == pytest.approx(truth, rel=0.02), name


def test_power_law_with_irreducible_loss_recovers_parameters():
    n = np.logspace(6, 10, 10)
    alpha, n_c, l_inf = 0.3, 2e8, 1.8
    fit = fit_power_law(n, (n_c / n) ** alpha + l_inf)
    assert fit.params["alpha"] == pytest.approx(alpha, rel=0.01)
    assert fit.params["N_c"] == pytest.approx(n_c, rel=0.01)
    assert fit.params["L_inf"] == pytest.approx(l_inf, rel=0.01)
    assert fit.predict(1e12) == pytest.approx((n_c / 1e12) ** alpha + l_inf, rel=1e-6)


def test_kaplan_power_law_recovers_parameters():
    n = np.logspace(6, 9, 6)
    fit = fit_kaplan(n, (8.8e13 / n) ** 0.076)  # Kaplan et al. (2020) L(N)
    assert fit.params["alpha"] == pytest.approx(0.076, rel=1e-4)
    assert fit.params["N_c"] == pytest.approx(8.8e13, rel=1e-3)


def test_kaplan_extrapolates_worse_than_power_law_with_floor():
    # Data with an irreducible loss: the pure power law cannot bend, so its extrapolation to the largest
    # model is clearly worse than the form that has L_inf.
    n = np.logspace(6, 10, 9)
    loss = (2e8 / n) ** 0.3 + 1.8
    with_floor = holdout_largest_model("power_law", n, loss)
    pure = holdout_largest_model("kaplan", n, loss)
    assert with_floor.largest_n_params == pytest.approx(1e10)
    assert with_floor.relative_error < 1e-4
    assert pure.relative_error > 10 * with_floor.relative_error


def test_chinchilla_holdout_largest_model(chinchilla_grid):
    n, d = chinchilla_grid
    result = holdout_largest_model("chinchilla", n, chinchilla_loss(n, d), n_tokens=d, n_starts=2)
    assert result.predicted.shape == (7,)  # every D at the largest N is held out
    assert result.relative_error < 1e-3


def test_bootstrap_interval_contains_truth(chinchilla_grid):
    n, d = chinchilla_grid
    rng = np.random.default_rng(7)
    loss = chinchilla_loss(n, d) * np.exp(rng.normal(0.0, 2e-3, size=n.shape))
    fit = bootstrap("chinchilla", n, loss, n_tokens=d, n_resamples=20, seed=3, n_starts=0)
    for name, truth in CHINCHILLA.items():
        low, high = fit.intervals[name]
        assert low <= truth <= high, (name, low, high)
        assert high > low  # noise gives a genuine interval, not a point
    # Seeded: the same call gives the same intervals.
    again = bootstrap("chinchilla", n, loss, n_tokens=d, n_resamples=20, seed=3, n_starts=0)
    assert again.intervals == fit.intervals


def test_power_law_bootstrap_interval_contains_truth():
    n = np.logspace(6, 10, 12)
    rng = np.random.default_rng(11)
    loss = ((2e8 / n) ** 0.3 + 1.8) * np.exp(rng.normal(0.0, 3e-3, size=n.shape))
    fit = bootstrap("power_law", n, loss, n_resamples=40, seed=0, n_starts=1)
    for name, truth in {"alpha": 0.3, "N_c": 2e8, "L_inf": 1.8}.items():
        low, high = fit.intervals[name]
        assert low <= truth <= high, (name, low, high)
        assert high > low  # noise gives a genuine interval, not a point


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: fit_power_law([1e6, 1e7], [3.0, 2.5]), "parameters"),
        (lambda: fit_chinchilla([1e6, 1e7, 1e8, 1e9], [1e9] * 4, [3.0, 2.9, 2.8, 2.7]), "parameters"),
        (lambda: fit_kaplan([1e6, -1e7, 1e8], [3.0, 2.5, 2.0]), "n_params"),
        (lambda: fit_kaplan([1e6, 1e7, 1e8], [3.0, 0.0, 2.0]), "losses"),
        (lambda: fit_power_law([1e6, 1e7, 1e8, np.nan], [3.0, 2.5, 2.0, 1.9]), "n_params"),
        (lambda: fit_chinchilla([1e6] * 6, [1e9, 0, 1e9, 1e9, 1e9, 1e9], [3.0] * 6), "n_tokens"),
        (lambda: fit_kaplan([1e6, 1e7, 1e8], [3.0, 2.5]), "length"),
        (lambda: holdout_largest_model("kaplan", [1e6, 1e6, 1e6], [3.0, 2.9, 2.8]), "distinct"),
        (lambda: bootstrap("kaplan", [1e6, 1e7, 1e8], [3.0, 2.5, 2.0], confidence=1.5), "confidence"),
    ],
)
def test_degenerate_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
