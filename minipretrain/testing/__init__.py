"""Test support that lessons and benchmarks may use too: ``fake_cupy``, a strict CPU stand-in for CuPy."""
