"""``Module``: a tree of layers that owns named Parameters, as ``torch.nn.Module`` (the small part of it we need).

Parameters and sub-modules are found by walking the attributes in the order they were assigned, so names are
stable (``transformer.h.0.attn.c_attn.weight``) and the same order every run. A Parameter reachable under two
names (a tied weight) is one Parameter and is listed once, under the name it was first found.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..autograd.tensor import Tensor
from ..backend import array_module, check_device, default_device, device_of, module_for, to_device
from ..errors import MinipretrainError
from .parameter import Parameter


class StateDictError(MinipretrainError, ValueError):
    """``load_state_dict`` got entries that do not fit the module: missing, unexpected or mis-shaped ones."""


class SeededDraws:
    """A CuPy random stream whose state is two integers: draw ``n`` comes from ``default_rng([seed, n])``.

    CuPy's generators cannot export their state (``bit_generator.state`` is a method returning a handle, not
    a dict), so a checkpoint could not save them. This stream saves as ``{seed, draws}`` and restores exactly.
    It is its own ``bit_generator`` so that code written for NumPy's ``generator.bit_generator.state`` (get
    and set) works unchanged.
    """

    kind = "SeededDraws"

    def __init__(self, xp: Any, seed: int, draws: int = 0) -> None:
        self.xp, self.seed, self.draws = xp, int(seed), int(draws)

    def random(self, size: Any = None, dtype: Any = np.float64) -> Any:
        generator = self.xp.random.default_rng([self.seed, self.draws])
        self.draws += 1
        return generator.random(size, dtype=dtype)

    @property
    def bit_generator(self) -> SeededDraws:
        return self

    @property
    def state(self) -> dict[str, Any]:
        return {"bit_generator": self.kind, "seed": self.seed, "draws": self.draws}

    @state.setter
    def state(self, value: dict[str, Any]) -> None:
        if not isinstance(value, dict) or value.get("bit_generator") != self.kind:
            kind = value.get("bit_generator") if isinstance(value, dict) else type(value).__name__
            warnings.warn(f"the dropout stream was saved on another device ({kind}); it restarts from seed "
                          f"{self.seed} here, so dropout masks differ from the uninterrupted run", stacklevel=2)
            return
        self.seed, self.draws = int(value["seed"]), int(value["draws"])


class RandomSource:
    """The seeded generator that every Dropout of one model draws from, so the model's seed fixes every mask.

    It lives beside the parameters (not in a global), so two models never share a random stream. Moving the
    model to another device starts a fresh generator of that device's array module from the same seed (on a
    GPU a :class:`SeededDraws`, whose state a checkpoint can save). The default device is ``MINIPRETRAIN_DEVICE``.
    """

    def __init__(self, seed: int, device: str | None = None) -> None:
        self.seed = int(seed)
        self.device = check_device(device or default_device())
        self.generator = self._new_generator()

    def _new_generator(self) -> Any:
        if self.device == "cuda":
            return SeededDraws(module_for("cuda"), self.seed)
        return np.random.default_rng(self.seed)

    def reseed(self, seed: int | None = None) -> None:
        """Restart the stream (from ``seed``, or the original seed when None)."""
        self.seed = self.seed if seed is None else int(seed)
        self.generator = self._new_generator()

    def to(self, device: str) -> None:
        device = check_device(device)
        if device != self.device:
            self.device = device
            self.reseed()


class Module:
    """Base class of every layer and model.

    Subclasses assign Parameters, Modules, ``ModuleList`` s and ``RandomSource`` s as attributes in
    ``__init__`` and define ``forward``; ``module(x)`` calls ``forward(x)``.
    """

    def __init__(self) -> None:
        self.training = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ----------------------------------------------------------------- the tree
    def _children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module ("" ) and every sub-module, depth first, each once."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child}" if name else child, sub) for child, sub in module._children()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        """This module and every sub-module, depth first."""
        for _, module in self.named_modules():
            yield module

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) in a stable order; a tied Parameter appears once, under its first name."""
        seen: set[int] = set()
        for module_name, module in self.named_modules():
            for attr, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{module_name}.{attr}" if module_name else attr), value

    def parameters(self) -> list[Parameter]:
        """Every distinct Parameter, in ``named_parameters`` order."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        """Number of learnable scalars (a tied weight counted once)."""
        return sum(p.size for p in self.parameters())

    def zero_grad(self) -> None:
        """Forget every Parameter's gradient (set it to None; the next backward writes a fresh one)."""
        for p in self.parameters():
            p.grad = None

    # ----------------------------------------------------------------- modes and devices
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout on) for this module and all below it; returns self."""
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode (dropout off); returns self."""
        return self.train(False)

    @property
    def device(self) -> str:
        """Where the parameters live ("cpu" or "cuda")."""
        first = next(iter(self.named_parameters()), None)
        return "cpu" if first is None else first[1].device

    def to(self, device: str) -> Module:
        """Move every Parameter (in place, so tied weights stay one object) and random source to ``device``."""
        device = check_device(device)
        for p in self.parameters():
            if p.device != device:
                p.data = to_device(p.data, device)
                p.grad = None if p.grad is None else to_device(p.grad, device)
        for module in self.modules():
            for value in vars(module).values():
                if isinstance(value, RandomSource):
                    value.to(device)
        return self

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Name -> the Parameter's array (not a copy; on the Parameter's device), in ``named_parameters`` order."""
        return {name: p.data for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy arrays (NumPy, CuPy or Tensor) into the Parameters, casting to each Parameter's dtype and device.

        Raises:
            StateDictError: listing every missing name (with ``strict``), unexpected name (with ``strict``)
                and shape mismatch at once; nothing is changed when it raises.
        """
        own = dict(self.named_parameters())
        missing = [name for name in own if name not in state]
        unexpected = [name for name in state if name not in own]
        mismatched = [
            f"{name}: checkpoint {tuple(np.shape(_raw(value)))} vs model {own[name].shape}"
            for name, value in state.items() if name in own and tuple(np.shape(_raw(value))) != own[name].shape
        ]
        problems = []
        if strict and missing:
            problems.append(f"missing from the checkpoint: {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"not in the model: {', '.join(unexpected)}")
        if mismatched:
            problems.append(f"shapes differ: {'; '.join(mismatched)}")
        if problems:
            raise StateDictError(f"cannot load the state dict into {type(self).__name__}: " + " | ".join(problems))
        for name, value in state.items():
            if name in own:
                p = own[name]
                array = to_device(_raw(value), p.device) if device_of(_raw(value)) != p.device else _raw(value)
                p.data = array_module(p.data).array(array, dtype=p.dtype, copy=True)
                p.grad = None

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._children():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + ("\n)" if len(lines) > 1 else ")")


def _raw(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.data
    return value if hasattr(value, "shape") else np.asarray(value)


class ModuleList(Module):
    """A list of Modules named ``0``, ``1``, ... (``transformer.h.3`` is the fourth block)."""

    def __init__(self, modules: list[Module]) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            setattr(self, str(index), module)
        self._length = len(modules)

    def __getitem__(self, index: int) -> Module:
        if not -self._length <= index < self._length:
            raise IndexError(f"ModuleList index {index} out of range for {self._length} modules")
        return getattr(self, str(index % self._length))

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[Module]:
        return (getattr(self, str(i)) for i in range(self._length))
