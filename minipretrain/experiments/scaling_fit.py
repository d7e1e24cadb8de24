"""Fitting scaling laws to (model size, data size, loss) measurements.

Three forms:

* :func:`fit_kaplan`      ``L(N) = (N_c / N) ** alpha``               (Kaplan et al. 2020, no irreducible loss)
* :func:`fit_power_law`   ``L(N) = (N_c / N) ** alpha + L_inf``       (power law plus irreducible loss)
* :func:`fit_chinchilla`  ``L(N, D) = E + A / N**alpha + B / D**beta`` (Hoffmann et al. 2022, approach 3)

All three use the recipe of Hoffmann et al. (2022, appendix D.2): each term is written as ``exp(linear in
the parameters)`` so the predicted log-loss is a log-sum-exp, e.g. for Chinchilla

    log L_hat = LSE(a - alpha log N, b - beta log D, e),   A = exp(a), B = exp(b), E = exp(e),

and the parameters minimise the Huber loss (delta = 1e-3) of ``log L_hat - log L`` with L-BFGS (SciPy),
started from a grid of initialisations; the best optimum wins. Hoffmann et al. run L-BFGS from every grid
point; we evaluate the objective on the whole grid (vectorised, cheap) and start L-BFGS only from the
``n_starts`` best grid points, which finds the same optimum at a fraction of the cost.

:func:`bootstrap` resamples the measurements (seeded) and refits to give percentile intervals for every
parameter; :func:`holdout_largest_model` fits on all but the largest model and reports the error of the
extrapolation to it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from ..backend import single_threaded_blas

HUBER_DELTA = 1e-3
#: Hoffmann et al.'s grid of initial values (appendix D.2) for exponents, log-coefficients and log E.
EXPONENT_GRID = (0.0, 0.5, 1.0, 1.5, 2.0)
LOG_COEFFICIENT_GRID = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
LOG_IRREDUCIBLE_GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)

FormName = Literal["kaplan", "power_law", "chinchilla"]


@dataclass
class ScalingFit:
    """A fitted scaling law.

    Attributes:
        form: ``kaplan``, ``power_law`` or ``chinchilla``.
        params: natural parameters: ``alpha, N_c`` (kaplan); ``alpha, N_c, L_inf`` (power_law);
            ``E, A, B, alpha, beta`` (chinchilla).
        raw: the optimised log-space parameter vector (log-coefficients, exponents, log E).
        objective: the final mean Huber loss divided by delta**2 (0 for a perfect fit).
        intervals: per parameter, a ``(low, high)`` bootstrap percentile interval (filled by :func:`bootstrap`).
    """

    form: FormName
    params: dict[str, float]
    raw: np.ndarray
    objective: float
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)

    def predict(self, n_params: np.ndarray | float, n_tokens: np.ndarray | float | None = None) -> np.ndarray:
        """Predicted loss at model size(s) ``n_params`` (and data size(s) ``n_tokens`` for Chinchilla)."""
        n = np.asarray(n_params, dtype=np.float64)
        p = self.params
        if self.form == "kaplan":
            return (p["N_c"] / n) ** p["alpha"]
        if self.form == "power_law":
            return (p["N_c"] / n) ** p["alpha"] + p["L_inf"]
        if n_tokens is None:
            raise ValueError("the Chinchilla form needs n_tokens")
        d = np.asarray(n_tokens, dtype=np.float64)
        return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


@dataclass(frozen=True)
class _Problem:
    """A log-sum-exp model ``log L_hat = LSE_k(designs[k] @ theta)`` with every term linear in theta."""

    form: FormName
    designs: np.ndarray  # (n_terms, n_points, n_params)
    log_loss: np.ndarray  # (n_points,)
    grid: np.ndarray  # (n_grid, n_params) initial values
    to_natural: Callable[[np.ndarray], dict[str, float]]
    # theta = centering @ phi: L-BFGS works on phi, where each log-coefficient is taken at the mean log size
    # (a - alpha log N = (a - alpha mean) - alpha (log N - mean)). Uncentred, a and alpha are almost
    # collinear (log N ~ 16..23) and L-BFGS needs thousands of steps; centred, a few dozen.
    centering: np.ndarray  # (n_params, n_params)


def _check_positive(name: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence, got shape {values.shape}")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"{name} must be finite and strictly positive")
    return values


def _problem(
    form: FormName, n_params: np.ndarray, losses: np.ndarray, n_tokens: np.ndarray | None = None
) -> _Problem:
    """Validate the measurements and build the design of ``form``."""
    n = _check_positive("n_params", n_params)
    loss = _check_positive("losses", losses)
    if len(n) != len(loss):
        raise ValueError(f"n_params and losses differ in length ({len(n)} vs {len(loss)})")
    log_n = np.log(n)
    ones, zeros = np.ones_like(log_n), np.zeros_like(log_n)
    mean_log_n = float(log_n.mean())
    if form == "kaplan":
        # theta = (a, alpha) with a = alpha * log N_c
        designs = np.stack([np.stack([ones, -log_n], axis=1)])
        grid = np.array(list(itertools.product(LOG_COEFFICIENT_GRID, EXPONENT_GRID)))

        def to_natural(theta: np.ndarray) -> dict[str, float]:
            return {"alpha": float(theta[1]), "N_c": float(np.exp(theta[0] / theta[1]))}

        centering = np.eye(2)
        centering[0, 1] = mean_log_n

    elif form == "power_law":
        # theta = (a, alpha, e): (N_c / N)^alpha = exp(a - alpha log N), L_inf = exp(e)
        designs = np.stack([np.stack([ones, -log_n, zeros], axis=1), np.stack([zeros, zeros, ones], axis=1)])
        grid = np.array(list(itertools.product(LOG_COEFFICIENT_GRID, EXPONENT_GRID, LOG_IRREDUCIBLE_GRID)))

        def to_natural(theta: np.ndarray) -> dict[str, float]:
            return {
                "alpha": float(theta[1]),
                "N_c": float(np.exp(theta[0] / theta[1])),
                "L_inf": float(np.exp(theta[2])),
            }

        centering = np.eye(3)
        centering[0, 1] = mean_log_n

    elif form == "chinchilla":
        if n_tokens is None:
            raise ValueError("the Chinchilla form needs n_tokens")
        d = _check_positive("n_tokens", n_tokens)
        if len(d) != len(n):
            raise ValueError(f"n_tokens and n_params differ in length ({len(d)} vs {len(n)})")
        log_d = np.log(d)
        # theta = (a, b, e, alpha, beta)
        designs = np.stack(
            [
                np.stack([ones, zeros, zeros, -log_n, zeros], axis=1),
                np.stack([zeros, ones, zeros, zeros, -log_d], axis=1),
                np.stack([zeros, zeros, ones, zeros, zeros], axis=1),
            ]
        )
        grid = np.array(
            list(
                itertools.product(
                    LOG_COEFFICIENT_GRID, LOG_COEFFICIENT_GRID, LOG_IRREDUCIBLE_GRID, EXPONENT_GRID, EXPONENT_GRID
                )
            )
        )

        def to_natural(theta: np.ndarray) -> dict[str, float]:
            return {
                "E": float(np.exp(theta[2])),
                "A": float(np.exp(theta[0])),
                "B": float(np.exp(theta[1])),
                "alpha": float(theta[3]),
                "beta": float(theta[4]),
            }

        centering = np.eye(5)
        centering[0, 3] = mean_log_n
        centering[1, 4] = float(log_d.mean())

    else:
        raise ValueError(f"unknown form {form!r}")
    n_free = designs.shape[2]
    if len(n) < n_free:
        raise ValueError(f"the {form} form has {n_free} parameters but only {len(n)} measurements were given")
    return _Problem(form, designs, np.log(loss), grid, to_natural, centering)


def _huber(residual: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss: quadratic within ``delta`` of zero, linear (slope ``delta``) beyond."""
    magnitude = np.abs(residual)
    clipped = np.minimum(magnitude, delta)
    return clipped * (magnitude - 0.5 * clipped)


def _objective_and_gradient(
    theta: np.ndarray, designs: np.ndarray, log_loss: np.ndarray, delta: float
) -> tuple[float, np.ndarray]:
    """Mean Huber loss of the log residuals, divided by delta**2 so a residual of delta costs 1/2.

    The scaling only conditions the problem (L-BFGS's stopping rules are absolute near a zero optimum); it
    does not move the minimum.
    """
    terms = designs @ theta  # (n_terms, n_points)
    # Plain NumPy log-sum-exp and softmax: this runs hundreds of times per fit and SciPy's wrappers cost
    # more than the arithmetic on a few dozen points.
    peak = terms.max(axis=0)
    exp_terms = np.exp(terms - peak)
    total = exp_terms.sum(axis=0)
    residual = peak + np.log(total) - log_loss
    weights = exp_terms / total  # d LSE / d term
    slope = np.clip(residual, -delta, delta)  # Huber derivative
    scale = 1.0 / (len(log_loss) * delta**2)
    value = float(_huber(residual, delta).sum() * scale)
    gradient = (weights * slope).reshape(-1) @ designs.reshape(-1, designs.shape[2]) * scale
    return value, gradient


def _grid_objectives(problem: _Problem, grid: np.ndarray, delta: float) -> np.ndarray:
    """Objective at every grid point at once, shape (n_grid,)."""
    terms = problem.designs @ grid.T  # (n_terms, n_points, n_grid)
    residual = logsumexp(terms, axis=0) - problem.log_loss[:, None]
    return _huber(residual, delta).mean(axis=0) / delta**2


def _minimise(problem: _Problem, starts: np.ndarray, delta: float) -> tuple[np.ndarray, float]:
    """Run L-BFGS (in centred coordinates) from every start; return the best parameters and objective."""
    centred_designs = problem.designs @ problem.centering
    centred_starts = np.linalg.solve(problem.centering, np.atleast_2d(starts).T).T
    best_phi, best_value = centred_starts[0], np.inf
    with single_threaded_blas():
        for start in centred_starts:
            result = minimize(
                _objective_and_gradient,
                start,
                args=(centred_designs, problem.log_loss, delta),
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-10},
            )
            if np.all(np.isfinite(result.x)) and result.fun < best_value:
                best_phi, best_value = result.x, float(result.fun)
    return problem.centering @ best_phi, best_value


def _fit(problem: _Problem, n_starts: int, delta: float, extra_starts: np.ndarray | None = None) -> ScalingFit:
    """Start L-BFGS from the ``n_starts`` best grid points (and ``extra_starts``); keep the best optimum."""
    if n_starts <= 0 and extra_starts is None:
        raise ValueError("need at least one start: n_starts > 0 or extra_starts")
    if n_starts > 0:
        grid_values = _grid_objectives(problem, problem.grid, delta)
        starts = problem.grid[np.argsort(grid_values, kind="stable")[:n_starts]]
    else:
        starts = np.empty((0, problem.grid.shape[1]))
    if extra_starts is not None:
        starts = np.concatenate([np.atleast_2d(extra_starts), starts])
    theta, value = _minimise(problem, starts, delta)
    # exp(a / alpha) overflows to inf when a fit drives alpha to ~0; that is a legitimate (degenerate) answer.
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        params = problem.to_natural(theta)
    return ScalingFit(form=problem.form, params=params, raw=theta, objective=value)


def fit_kaplan(
    n_params: Sequence[float] | np.ndarray, losses: Sequence[float] | np.ndarray,
    n_starts: int = 4, delta: float = HUBER_DELTA,
) -> ScalingFit:
    """Fit the pure power law ``L(N) = (N_c / N) ** alpha`` (no irreducible loss)."""
    return _fit(_problem("kaplan", np.asarray(n_params), np.asarray(losses)), n_starts, delta)


def fit_power_law(
    n_params: Sequence[float] | np.ndarray, losses: Sequence[float] | np.ndarray,
    n_starts: int = 8, delta: float = HUBER_DELTA,
) -> ScalingFit:
    """Fit ``L(N) = (N_c / N) ** alpha + L_inf`` (Huber on log residuals, multi-start L-BFGS)."""
    return _fit(_problem("power_law", np.asarray(n_params), np.asarray(losses)), n_starts, delta)


def fit_chinchilla(
    n_params: Sequence[float] | np.ndarray, n_tokens: Sequence[float] | np.ndarray,
    losses: Sequence[float] | np.ndarray, n_starts: int = 16, delta: float = HUBER_DELTA,
) -> ScalingFit:
    """Fit ``L(N, D) = E + A / N**alpha + B / D**beta`` as Hoffmann et al. (2022) approach 3."""
    problem = _problem("chinchilla", np.asarray(n_params), np.asarray(losses), np.asarray(n_tokens))
    return _fit(problem, n_starts, delta)


def fit_scaling_law(
    form: FormName, n_params: Sequence[float] | np.ndarray, losses: Sequence[float] | np.ndarray,
    n_tokens: Sequence[float] | np.ndarray | None = None, n_starts: int = 8, delta: float = HUBER_DELTA,
) -> ScalingFit:
    """Fit the named form (dispatch used by :func:`bootstrap` and :func:`holdout_largest_model`)."""
    problem = _problem(
        form, np.asarray(n_params), np.asarray(losses), None if n_tokens is None else np.asarray(n_tokens)
    )
    return _fit(problem, n_starts, delta)


def bootstrap(
    form: FormName, n_params: Sequence[float] | np.ndarray, losses: Sequence[float] | np.ndarray,
    n_tokens: Sequence[float] | np.ndarray | None = None, n_resamples: int = 200, confidence: float = 0.95,
    seed: int = 0, n_starts: int = 2, delta: float = HUBER_DELTA,
) -> ScalingFit:
    """Fit ``form`` and attach percentile bootstrap intervals for every parameter.

    Each resample draws the measurements with replacement (seeded) and refits, starting from the full-data
    optimum plus the ``n_starts`` best grid points of that resample.

    Returns:
        the full-data fit with ``intervals`` filled in.
    """
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    if n_resamples < 2:
        raise ValueError("bootstrap needs at least 2 resamples")
    n = np.asarray(n_params, dtype=np.float64)
    loss = np.asarray(losses, dtype=np.float64)
    d = None if n_tokens is None else np.asarray(n_tokens, dtype=np.float64)
    full_problem = _problem(form, n, loss, d)
    full_fit = _fit(full_problem, max(n_starts, 8), delta)
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {name: [] for name in full_fit.params}
    for _ in range(n_resamples):
        chosen = rng.integers(0, len(n), size=len(n))
        problem = _problem(form, n[chosen], loss[chosen], None if d is None else d[chosen])
        refit = _fit(problem, n_starts, delta, extra_starts=full_fit.raw)
        for name, value in refit.params.items():
            samples[name].append(value)
    tail = 100 * (1 - confidence) / 2
    full_fit.intervals = {
        name: (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))
        for name, values in samples.items()
    }
    return full_fit


@dataclass
class Extrapolation:
    """Result of fitting on the smaller models and predicting the largest.

    Attributes:
        fit: the fit on all models but the largest.
        largest_n_params: size of the held-out model.
        predicted, actual: losses at the held-out points.
        relative_error: mean of ``|predicted - actual| / actual`` over the held-out points.
    """

    fit: ScalingFit
    largest_n_params: float
    predicted: np.ndarray
    actual: np.ndarray
    relative_error: float


def holdout_largest_model(
    form: FormName, n_params: Sequence[float] | np.ndarray, losses: Sequence[float] | np.ndarray,
    n_tokens: Sequence[float] | np.ndarray | None = None, n_starts: int = 8, delta: float = HUBER_DELTA,
) -> Extrapolation:
    """Fit ``form`` on every measurement except those of the largest model, then predict that model.

    Raises:
        ValueError: when only one model size is present (nothing left to fit on).
    """
    n = _check_positive("n_params", np.asarray(n_params))
    loss = np.asarray(losses, dtype=np.float64)
    d = None if n_tokens is None else np.asarray(n_tokens, dtype=np.float64)
    largest = n.max()
    held_out = n == largest
    if held_out.all():
        raise ValueError("holdout_largest_model needs at least two distinct model sizes")
    train = ~held_out
    fit = fit_scaling_law(form, n[train], loss[train], None if d is None else d[train], n_starts, delta)
    predicted = fit.predict(n[held_out], None if d is None else d[held_out])
    actual = loss[held_out]
    return Extrapolation(
        fit=fit,
        largest_n_params=float(largest),
        predicted=predicted,
        actual=actual,
        relative_error=float(np.mean(np.abs(predicted - actual) / actual)),
    )
