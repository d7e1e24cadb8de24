"""The strict fake device refuses what CuPy refuses, allows what CuPy allows, and counts host syncs."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import minipretrain as mp
from minipretrain.testing import cupy_names, fake_cupy

cp = fake_cupy.MODULES["cupy"]


@pytest.fixture(autouse=True)
def _fake_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import cupy`` finds the fake during each test (and whatever was there before, after it)."""
    for name, module in fake_cupy.MODULES.items():
        monkeypatch.setitem(sys.modules, name, module)


def dev(values: object) -> fake_cupy.ndarray:
    return cp.asarray(np.asarray(values, dtype=np.float64))


def test_device_arrays_are_not_ndarrays_and_report_cupy_as_their_module() -> None:
    a = dev([1.0, 2.0])
    assert not isinstance(a, np.ndarray)
    assert type(a).__module__ == "cupy"
    assert mp.backend.device_of(a) == "cuda"


@pytest.mark.parametrize("attempt", [
    lambda a: np.asarray(a),
    lambda a: np.array(a),
    lambda a: np.zeros(2).__setitem__(slice(None), a),
])
def test_implicit_conversion_to_numpy_is_refused_with_cupys_message(attempt: object) -> None:
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        attempt(dev([1.0, 2.0]))  # type: ignore[operator]


@pytest.mark.parametrize("attempt", [
    lambda a: a + np.ones(2),
    lambda a: np.ones(2) * a,
    lambda a: cp.maximum(a, np.ones(2)),
    lambda a: cp.concatenate([a, np.ones(2)]),
    lambda a: cp.where(a > 1, a, np.zeros(2)),
])
def test_mixing_a_numpy_array_into_a_device_op_is_refused(attempt: object) -> None:
    with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
        attempt(dev([1.0, 2.0]))  # type: ignore[operator]


def test_what_cupy_allows_passes() -> None:
    a = dev([[1.0, 4.0], [9.0, 16.0]])
    np.testing.assert_array_equal(np.sqrt(a).get(), [[1, 2], [3, 4]])  # __array_ufunc__ dispatch
    assert isinstance(np.sqrt(a), fake_cupy.ndarray)
    np.testing.assert_array_equal(a[np.array([1, 0])].get(), [[9, 16], [1, 4]])  # NumPy integer index array
    assert np.concatenate([a, a]).shape == (4, 2)  # __array_function__ dispatch
    assert (a * np.float32(2) + 1).get()[0, 0] == 3.0  # NumPy scalars are scalars
    host = np.arange(3.0)
    copied = cp.asarray(host)
    host[0] = 99.0
    assert copied.get()[0] == 0.0, "asarray(host) copies to the device"
    b = cp.zeros((2, 2))
    b[...] = np.ones((2, 2))  # a host value assigned into a device array is copied over
    assert b.sum().get() == 4.0


def test_reductions_stay_on_the_device_as_0d_arrays() -> None:
    total = dev([1.0, 2.0]).sum()
    assert isinstance(total, fake_cupy.ndarray) and total.ndim == 0
    assert isinstance(cp.count_nonzero(dev([1.0, 0.0])), fake_cupy.ndarray)


def test_only_names_real_cupy_has_are_exposed() -> None:
    exposed = {name for name in vars(cp) if not name.startswith("_")}
    assert exposed <= cupy_names.CUPY | {"ndarray"}
    assert {"add", "where", "take_along_axis", "asnumpy", "float32"} <= exposed
    with pytest.raises(AttributeError):
        cp.fft  # noqa: B018 - NumPy's submodules do not leak through
    with pytest.raises(AttributeError):
        dev([1.0]).tofile_as_numpy  # noqa: B018 - no such ndarray method in CuPy


def test_the_generator_has_cupys_shape() -> None:
    generator = cp.random.default_rng(0)
    assert callable(generator.bit_generator.state), "CuPy's bit_generator.state is a method, not a dict"
    draws = generator.random((3,), dtype=np.float32)
    assert isinstance(draws, fake_cupy.ndarray) and draws.dtype == np.float32
    for missing in ("normal", "choice", "permutation"):
        with pytest.raises(AttributeError):
            getattr(generator, missing)
    with pytest.raises(TypeError):
        generator.random((2,), dtype=np.int32)
    again = cp.random.default_rng(0).random((3,), dtype=np.float32)
    np.testing.assert_array_equal(draws.get(), again.get())


def test_every_host_synchronisation_is_counted_at_its_call_site() -> None:
    a = dev([1.0, -2.0, 3.0])
    with fake_cupy.count_syncs() as syncs:
        float(a.sum())
        int(a.max())
        bool(a.all())
        a.item  # noqa: B018 - fetching the method is not a sync
        a[1:2].item()
        a.tolist()
        a.get()
        cp.asnumpy(a)
        a[a > 0]
        a.nonzero()
        f"{a.sum():.2f}"
    assert syncs.total == 10, syncs
    assert all(site.split(" ")[0].startswith(__file__) for site in syncs.sites), syncs
    with fake_cupy.count_syncs() as none:
        (a * 2 + a.sum()).max()
        cp.where(a > 0, a, 0.0)
        a[np.array([0, 2])]
    assert none.total == 0, none


def test_add_at_sums_repeated_indices_and_scatter_add_warns_as_deprecated() -> None:
    target = cp.zeros((3,))
    cp.add.at(target, cp.asarray(np.array([0, 0, 2])), dev([1.0, 2.0, 5.0]))
    np.testing.assert_array_equal(target.get(), [3.0, 0.0, 5.0])
    cupyx = fake_cupy.MODULES["cupyx"]
    with pytest.warns(DeprecationWarning, match="cupy.add.at"):
        cupyx.scatter_add(target, np.array([1]), dev([1.0]))


def test_binary_ops_defer_to_tensors_and_device_scalars_are_not_indices() -> None:
    t = mp.Tensor(dev([1.0, 2.0]))
    assert isinstance(dev([1.0, 1.0]) + t, mp.Tensor)
    with pytest.raises(TypeError):
        range(dev(3.0))  # CuPy arrays have no __index__
