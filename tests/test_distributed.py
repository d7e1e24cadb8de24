"""Data-parallel pieces in one process: sharding, the sharded step's gradient, sharded evaluation, a stop
reaching every rank, the communicators' contracts and their errors. (Real multi-process runs of the trainer
are in test_distributed_mpi.py.)

Ranks are simulated by running each rank's share in turn with a communicator whose collectives are the
identity, then adding the shares by hand: that sum is what the all-reduce computes. Compared in float64 to
1e-12 relative: both sides add the same per-window gradients, grouped differently (summation-order
rounding, ~1e-16 per addition); a wrong share or a per-shard normalisation would be off by O(1).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minipretrain.data import MarkovCorpus, PretrainingDataset
from minipretrain.distributed import (Communicator, MPIUnavailableError, SingleProcessCommunicator, fingerprint,
                                      import_mpi, init_communicator, launched_world_size, rank_micro_batches,
                                      shard_bounds, stack_batches)
from minipretrain.distributed.communicator import INSTALL_HINT
from minipretrain.distributed.launch import available_cores, launch_command
from minipretrain.distributed.optimizer_shard import partition_parameters
from minipretrain.distributed.nccl import NCCLCommunicator
from minipretrain.evaluation import evaluate
from minipretrain.models import BERT, GPT, BERTConfig, GPTConfig
from minipretrain.objectives import (CausalLanguageModeling, LossTotals, MaskedLanguageModeling,
                                     accumulate_gradients, token_weighted_loss)
from minipretrain.optim.flat import FlatParameters
from minipretrain.tokenizers import CharTokenizer
from minipretrain.training import PreTrainer, load_checkpoint

SEQ_LEN, RTOL = 12, 1e-12


class SimulatedRank(Communicator):
    """Rank ``rank`` of ``world_size`` whose collectives leave everything as it is (the test adds the shares)."""

    backend = "simulated"

    def __init__(self, rank: int, world_size: int) -> None:
        self.rank, self.world_size = rank, world_size


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("distributed")
    path = folder / "markov.txt"
    path.write_text(MarkovCorpus(alphabet_size=6, order=1, concentration=0.3, seed=3).text(
        20_000, rng=np.random.default_rng(0)))
    return path, folder / "cache"


def build(corpus: tuple[Path, Path], kind: str):
    path, cache = corpus
    tokenizer = CharTokenizer()
    train, val = (PretrainingDataset(path, tokenizer, SEQ_LEN, objective=kind, split=s, cache_dir=cache)
                  for s in ("train", "validation"))
    if kind == "clm":
        model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=SEQ_LEN,
                              dtype="float64"))
        return model, CausalLanguageModeling(model, tokenizer), train, val
    model = BERT(BERTConfig(vocab_size=tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=16,
                            max_position_embeddings=SEQ_LEN, dropout=0.0, dtype="float64"))
    return model, MaskedLanguageModeling(model, tokenizer, mask_prob=0.2), train, val


# --------------------------------------------------------------------------- sharding
@given(num_items=st.integers(0, 200), world_size=st.integers(1, 9))
def test_shard_bounds_cover_every_item_once_in_contiguous_near_equal_blocks(num_items, world_size):
    blocks = [shard_bounds(num_items, world_size, rank) for rank in range(world_size)]
    assert blocks[0][0] == 0 and blocks[-1][1] == num_items
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    sizes = [stop - start for start, stop in blocks]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_shard_bounds_refuses_a_rank_outside_the_world():
    with pytest.raises(ValueError, match="not one of"):
        shard_bounds(10, 2, 2)


@pytest.mark.parametrize("world_size", [1, 2, 3, 4, 16])
def test_the_ranks_micro_batches_are_the_steps_windows_in_order(corpus, world_size):
    model, objective, train, _ = build(corpus, "mlm")
    rng = np.random.default_rng(0)
    prepared = [objective.prepare(train.get_batch(5, rng), rng) for _ in range(3)]  # 15 windows
    whole = stack_batches(prepared)
    shares = [rank_micro_batches(prepared, rank, world_size, 5) for rank in range(world_size)]
    assert all(b.input_ids.shape[0] <= 5 for share in shares for b in share)
    joined = [b for share in shares for b in share]
    for name in ("input_ids", "attention_mask", "labels", "token_type_ids"):
        np.testing.assert_array_equal(np.concatenate([getattr(b, name) for b in joined]), getattr(whole, name))
    if world_size == 16:  # more ranks than windows: the last rank has nothing to do
        assert shares[-1] == []


# --------------------------------------------------------------------------- the sharded step
@pytest.mark.parametrize("kind", ["clm", "mlm"])
@pytest.mark.parametrize("world_size", [2, 3, 7])
def test_the_shards_gradients_add_up_to_the_single_process_gradient(corpus, kind, world_size):
    """The one accumulation loop, given a rank and a world size, back-propagates that rank's windows scaled by
    the whole step's target count: the ranks' gradients (what the all-reduce adds) are one process's."""
    model, objective, train, _ = build(corpus, kind)
    flat = FlatParameters(model.parameters())
    batches = [train.get_batch(4, np.random.default_rng([1, i])) for i in range(3)]
    accumulate_gradients(objective, model, batches, np.random.default_rng(9))  # the single-process helper
    flat.collect_grads()
    expected = flat.grad.copy()
    rng = np.random.default_rng(9)  # the same draws in the same order as the helper's
    prepared = [objective.prepare(b, rng) for b in batches]
    single = token_weighted_loss(objective, model, prepared)
    counts = [p.num_targets for p in prepared]
    total, shares = np.zeros_like(expected), []
    for rank in range(world_size):
        flat.zero_grad()
        shares.append(token_weighted_loss(objective, model, prepared, backward=True, rank=rank,
                                          world_size=world_size))
        flat.collect_grads()
        total += flat.grad
    if kind == "mlm":
        assert len(set(counts)) > 1  # unequal targets per micro-batch: a mean of means would be wrong
    np.testing.assert_allclose(total, expected, rtol=RTOL, atol=1e-14 * np.abs(expected).max())
    assert sum(s.num_targets for s in shares) == single.num_targets == sum(counts)
    assert sum(s.num_tokens for s in shares) == single.num_tokens
    assert sum(s.loss_sum for s in shares) == pytest.approx(single.loss_sum, rel=RTOL)
    assert sum(s.correct for s in shares) == single.correct


def test_a_step_without_targets_computes_no_gradient_on_any_rank(corpus):
    model, objective, train, _ = build(corpus, "clm")
    prepared = [objective.prepare(train.get_batch(2, np.random.default_rng(0)))]
    prepared[0].labels[:] = -100
    for rank in range(2):
        totals = token_weighted_loss(objective, model, prepared, backward=True, rank=rank, world_size=2)
        assert totals.num_targets == 0 and totals.loss == 0.0
    assert all(p.grad is None for p in model.parameters())


def test_loss_totals_are_summed_over_the_ranks_in_one_collective():
    class Recording(SimulatedRank):
        def allreduce_scalars(self, *values):
            self.calls = getattr(self, "calls", []) + [values]
            return tuple(2 * float(v) for v in values)  # as if a second rank held the same sums

    comm = Recording(0, 2)
    totals, (stops,) = LossTotals(loss_sum=3.0, correct=2.0, num_targets=5, num_tokens=8).summed_over(comm, 1.0)
    assert (totals.loss_sum, totals.correct, totals.num_targets, totals.num_tokens, stops) == (6.0, 4.0, 10, 16, 2.0)
    assert len(comm.calls) == 1


class OtherRankStops(SimulatedRank):
    """One rank of two whose partner asks to stop (Ctrl-C there) in its ``stop_at``-th step."""

    def __init__(self, stop_at: int) -> None:
        super().__init__(0, 1)
        self.stop_at, self.steps = stop_at, 0

    def allreduce_scalars(self, *values):
        if len(values) == 5:  # the step's sums: loss, correct, targets, tokens, stop
            self.steps += 1
            values = (*values[:4], values[4] + (self.steps == self.stop_at))
        return tuple(float(v) for v in values)


def test_a_stop_asked_on_another_rank_ends_this_rank_after_the_same_step_with_a_checkpoint(corpus, tmp_path):
    model, objective, train, _ = build(corpus, "clm")
    trainer = PreTrainer(model=model, objective=objective, dataset=train, batch_size=2, max_steps=10,
                         progress=False, checkpoint_dir=tmp_path, comm=OtherRankStops(stop_at=3))
    result = trainer.train()
    assert result.stopped_early == "interrupted" and result.steps == 3
    assert load_checkpoint(tmp_path / "checkpoint.npz")["step"] == 3


@pytest.mark.parametrize("kind", ["clm", "mlm"])
def test_sharded_evaluation_is_the_whole_split_evaluation(corpus, kind):
    model, objective, _, val = build(corpus, kind)
    expected = evaluate(model, val, objective, batch_size=3)
    for world_size in (2, 3):
        parts = [evaluate(model, val, objective, batch_size=3, comm=SimulatedRank(r, world_size))
                 for r in range(world_size)]
        targets = sum(p.num_targets for p in parts)
        assert targets == expected.num_targets
        assert sum(p.loss * p.num_targets for p in parts) / targets == pytest.approx(expected.loss, rel=RTOL)
        assert sum(p.accuracy * p.num_targets for p in parts) / targets == pytest.approx(expected.accuracy, rel=RTOL)
    single = evaluate(model, val, objective, 3, max_batches=2, comm=SingleProcessCommunicator())
    assert single.loss == evaluate(model, val, objective, 3, max_batches=2).loss


# --------------------------------------------------------------------------- communicators
def test_single_process_collectives_are_the_identity():
    comm = init_communicator("single")
    buffer = np.arange(5.0)
    assert comm.allreduce_sum(buffer) is buffer and buffer.tolist() == [0, 1, 2, 3, 4]
    assert comm.allreduce_scalars(2, 3.5) == (2.0, 3.5)
    assert comm.broadcast({"a": 1}) == {"a": 1} and comm.is_main and comm.world_size == 1
    assert comm.broadcast_buffer(buffer) is buffer and buffer.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(TypeError, match="contiguous"):
        comm.allreduce_sum(np.arange(6.0)[::2])
    with pytest.raises(ValueError, match="unknown communicator backend"):
        init_communicator("gloo")


def test_fingerprint_ignores_key_order_and_sees_every_value():
    assert fingerprint({"a": 1, "b": (1, 2)}) == fingerprint({"b": [1, 2], "a": np.int64(1)})
    assert fingerprint({"a": 1, "b": (1, 2)}) != fingerprint({"a": 1, "b": (1, 3)})


def test_the_launcher_is_detected_from_its_environment(monkeypatch):
    assert launched_world_size({}) is None
    assert launched_world_size({"PMI_SIZE": "3"}) == 3  # MPICH (Hydra)
    assert launched_world_size({"OMPI_COMM_WORLD_SIZE": "2"}) == 2  # Open MPI
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(init_communicator("auto"), SingleProcessCommunicator)


def test_missing_mpi4py_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(MPIUnavailableError, match="pip install mpi4py mpich"):
        import_mpi()


def test_a_missing_mpi_library_says_what_to_install():
    pytest.importorskip("mpi4py")
    code = ("from minipretrain.distributed import init_communicator\n"
            "try:\n    init_communicator('auto')\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PMI_SIZE": "2",
           "MPI4PY_LIBMPI": "/nonexistent/libmpi.so.12"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("MPIUnavailableError"), out.stdout + out.stderr
    assert "cannot load an MPI library" in out.stdout and INSTALL_HINT in out.stdout


# --------------------------------------------------------------------------- the launcher
def test_the_launcher_runs_one_process_and_says_why_when_mpi_cannot_start():
    python = "/env/bin/python"
    single = [python, "-m", "minipretrain", "train", "--config", "c.toml"]
    arguments = ["train", "--config", "c.toml"]
    assert launch_command(arguments, 1, python, "/env/bin/mpiexec", True) == (single, "NPROC=1")
    command, reason = launch_command(arguments, 2, python, mpiexec="", mpi_ok=True)
    assert command == single and reason.startswith("mpiexec was not found") and INSTALL_HINT in reason
    command, reason = launch_command(arguments, 2, python, "/env/bin/mpiexec", mpi_ok=False)
    assert command == single and "cannot load an MPI library" in reason
    command, reason = launch_command(arguments, 3, python, "/env/bin/mpiexec", True, ["-hosts", "a,b"])
    assert reason is None and command == ["/env/bin/mpiexec", "-hosts", "a,b", "-n", "3", *single]
    with pytest.raises(ValueError, match="at least 1"):
        launch_command(arguments, 0, python, "/env/bin/mpiexec", True)
    assert available_cores() >= 1


# --------------------------------------------------------------------------- NCCL, structurally
class FakeArray:
    """Just enough of a CuPy array: a device pointer, a dtype, a size, contiguity."""

    def __init__(self, size: int, dtype=np.float32) -> None:
        self.size, self.dtype = size, np.dtype(dtype)
        self.data = type("Pointer", (), {"ptr": 0xC0FFEE})()
        self.flags = type("Flags", (), {"c_contiguous": True})()


class FakeCupy:
    ndarray = FakeArray

    def __init__(self, devices: int = 2) -> None:
        self.used: list[int] = []
        fake = self
        stream = type("Stream", (), {"ptr": 0x5EED, "synchronize": lambda self: None})()

        class Device:
            def __init__(self, index: int) -> None:
                self.index = index

            def use(self) -> None:
                fake.used.append(self.index)

        runtime = type("Runtime", (), {"getDeviceCount": staticmethod(lambda: devices)})
        self.cuda = type("Cuda", (), {"Device": Device, "runtime": runtime,
                                      "get_current_stream": staticmethod(lambda: stream)})


class FakeNccl:
    NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64, NCCL_SUM = 6, 7, 8, 0

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.unique_ids = 0
        fake = self

        class NcclCommunicator:
            def __init__(self, world_size: int, unique_id, rank: int) -> None:
                fake.joined = (world_size, unique_id, rank)

            def allReduce(self, *args) -> None:  # noqa: N802 - CuPy's name
                fake.calls.append(("allReduce", *args))

            def bcast(self, *args) -> None:
                fake.calls.append(("bcast", *args))

        self.NcclCommunicator = NcclCommunicator

    def get_unique_id(self):
        self.unique_ids += 1
        return (1, 2, 3)


class FakeMPI(SimulatedRank):
    """Rank 1 of 2: receives rank 0's NCCL id through broadcast."""

    def broadcast(self, value, root=0):
        assert value is None and root == 0  # only rank 0 creates the id
        return ("id", "from", "rank 0")


def test_nccl_bootstrap_and_allreduce_follow_llm_c():
    cupy, nccl = FakeCupy(devices=2), FakeNccl()
    comm = NCCLCommunicator(FakeMPI(1, 2), cupy=cupy, nccl=nccl, local_rank=1)
    assert cupy.used == [1]  # the rank's GPU on its machine, selected before NCCL starts
    assert nccl.unique_ids == 0 and nccl.joined == (2, ("id", "from", "rank 0"), 1)
    buffer = FakeArray(800_000, np.float32)
    assert comm.allreduce_sum(buffer) is buffer
    assert comm.broadcast_buffer(buffer) is buffer
    assert nccl.calls == [("allReduce", 0xC0FFEE, 0xC0FFEE, 800_000, FakeNccl.NCCL_FLOAT32, FakeNccl.NCCL_SUM, 0x5EED),
                          ("bcast", 0xC0FFEE, 800_000, FakeNccl.NCCL_FLOAT32, 0, 0x5EED)]
    with pytest.raises(TypeError, match="GPU"):
        comm.allreduce_sum(np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="float16/32/64"):
        comm.allreduce_sum(FakeArray(3, np.int32))
    with pytest.raises(Exception, match="only 2 GPU"):
        NCCLCommunicator(FakeMPI(1, 2), cupy=cupy, nccl=nccl, local_rank=2)


# --------------------------------------------------------------------------- ELECTRA: step statistics
def test_electra_step_loss_is_exact_however_the_step_is_split(corpus):
    """L = Σ NLL / |M| + 50 · Σ BCE / N over the whole step, with |M| and N the step's counts
    (``step_statistics``): one micro-batch, three, and 2 or 3 simulated ranks give the same loss and gradient.
    (Before the hook each micro-batch weighted its BCE by its own |M_i| / N_i: ~1e-5 in the loss, ~1e-2 in the
    gradient on this step.)"""
    from minipretrain.models import create_model
    from minipretrain.objectives import data_layout, make_objective
    from minipretrain.ops import cross_entropy
    from minipretrain.ops.binary_cross_entropy import binary_cross_entropy_with_logits

    path, cache = corpus
    tokenizer = CharTokenizer()
    train = PretrainingDataset(path, tokenizer, SEQ_LEN, objective=data_layout("rtd"), split="train",
                               cache_dir=cache)
    model = create_model("electra", tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=SEQ_LEN + 2,
                         dropout=0.0, dtype="float64", seed=0)
    objective = make_objective("rtd", model, tokenizer, mask_prob=0.25)
    flat = FlatParameters(model.parameters())
    rng = np.random.default_rng(9)
    prepared = [objective.prepare(train.get_batch(5, rng), rng) for _ in range(3)]
    prepared[1].labels[0] = -100  # a window without a masked token: its BCE still counts
    masked = [p.num_targets for p in prepared]
    real = [int(p.attention_mask.sum()) for p in prepared]
    assert len(set(np.array(masked) / np.array(real))) == 3  # the micro-batches' ratios |M_i| / N_i differ

    def step(batches, world_size):
        loss_sum, grad = 0.0, np.zeros(flat.grad.shape)
        for rank in range(world_size):
            flat.zero_grad()
            loss_sum += token_weighted_loss(objective, model, batches, backward=True, rank=rank,
                                            world_size=world_size).loss_sum
            flat.collect_grads()
            grad += flat.grad
        return loss_sum / sum(masked), grad

    whole = stack_batches(prepared)
    loss, grad = step([whole], 1)
    with_sampling = objective.replace(model.generator(whole.input_ids, whole.attention_mask), whole, "cpu")
    nll = cross_entropy(model.generator(whole.input_ids, whole.attention_mask), whole.labels, reduction="sum")
    bce = binary_cross_entropy_with_logits(model.discriminator(with_sampling[0], whole.attention_mask),
                                           with_sampling[1], mask=whole.attention_mask, reduction="sum")
    assert loss == pytest.approx(nll.item() / sum(masked) + 50 * bce.item() / sum(real), rel=RTOL)
    for batches, world_size in ((prepared, 1), (prepared, 2), (prepared, 3), ([whole], 2)):
        got_loss, got_grad = step(batches, world_size)
        assert got_loss == pytest.approx(loss, rel=RTOL), (len(batches), world_size)
        np.testing.assert_allclose(got_grad, grad, rtol=RTOL, atol=1e-13 * np.abs(grad).max())


# --------------------------------------------------------------------------- NCCL: the choice and the device
class Recorded:
    """Stands in for a communicator class: records that it was built, and with what."""

    def __init__(self, backend: str, log: list) -> None:
        self.backend, self.log = backend, log

    def __call__(self, *args, **kwargs):
        self.log.append(self.backend)
        return self


def test_auto_picks_nccl_for_a_model_on_cuda_under_mpiexec_mpi_otherwise_and_the_variable_overrides(
        device, monkeypatch):
    from minipretrain.distributed import communicator, nccl

    log: list[str] = []
    monkeypatch.setattr(communicator, "MPICommunicator", Recorded("mpi", log))
    monkeypatch.setattr(nccl, "NCCLCommunicator", Recorded("nccl", log))
    monkeypatch.delenv("MINIPRETRAIN_COMMUNICATOR", raising=False)
    assert isinstance(init_communicator("auto", device=device), SingleProcessCommunicator)  # not launched
    monkeypatch.setenv("PMI_SIZE", "2")
    init_communicator("auto", device=device)
    assert log[-1] == ("nccl" if device == "cuda" else "mpi")
    monkeypatch.setenv("MINIPRETRAIN_COMMUNICATOR", "mpi")  # the explicit way to keep GPU gradients on MPI
    init_communicator("auto", device=device)
    assert log[-1] == "mpi"
    monkeypatch.setenv("MINIPRETRAIN_COMMUNICATOR", "gloo")
    with pytest.raises(ValueError, match="MINIPRETRAIN_COMMUNICATOR='gloo' is not a communicator"):
        init_communicator("auto", device=device)


@pytest.mark.gpu
def test_the_nccl_communicator_on_one_rank_sums_the_device_buffer_in_place():
    """cupy.cuda.nccl as the device has it (the fake device's, which sums on the host; or a GPU's), one rank:
    the all-reduce and the broadcast of a flat buffer leave it as it is, through pointers and NCCL datatypes."""
    from minipretrain.backend import to_device, to_host

    comm = NCCLCommunicator(SimulatedRank(0, 1), local_rank=0)
    assert comm.comm.size() == 1 and comm.comm.rank_id() == 0 and comm.device_id == 0
    for dtype in (np.float32, np.float64):
        values = np.linspace(-1, 1, 1001).astype(dtype)
        buffer = to_device(values, "cuda")
        assert comm.allreduce_sum(buffer) is buffer and comm.broadcast_buffer(buffer) is buffer
        np.testing.assert_array_equal(to_host(buffer), values)
    with pytest.raises(TypeError, match="GPU"):
        comm.allreduce_sum(np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="float16/32/64"):
        comm.allreduce_sum(to_device(np.zeros(3, np.int32), "cuda"))
    comm.barrier()


@given(sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=60), world_size=st.integers(1, 8))
def test_parameter_blocks_are_consecutive_cover_every_parameter_and_are_near_equal(sizes, world_size):
    blocks = partition_parameters(sizes, world_size)
    assert len(blocks) == world_size
    assert [i for block in blocks for i in block] == list(range(len(sizes)))  # consecutive, each once
    ideal = sum(sizes) / world_size
    for rank, block in enumerate(blocks[:-1]):  # each cut sits at the boundary nearest its target
        end = sum(sizes[:block.stop])
        assert abs(end - ideal * (rank + 1)) <= max(sizes) / 2 + 1e-9


def test_a_sharded_norm_and_update_equal_the_replicated_ones_bit_for_bit():
    from minipretrain.optim.flat import FlatAdamW
    from minipretrain.optim import param_groups

    def model_and_optimizer():
        model = GPT(GPTConfig(vocab_size=11, n_layer=2, n_head=2, n_embd=16, block_size=8, seed=4))
        optimizer = FlatAdamW(param_groups(model, 0.1), lr=1e-2, betas=(0.9, 0.99))
        rng = np.random.default_rng(0)
        for p in optimizer.flat.params:
            p.grad = rng.standard_normal(p.shape).astype(p.data.dtype)
        return optimizer

    reference, sharded = model_and_optimizer(), model_and_optimizer()
    whole = range(len(reference.flat.params))
    assert sharded.flat.clip_grad_norm(0.5, owned=whole, comm=SingleProcessCommunicator()) == \
        reference.flat.clip_grad_norm(0.5)
    blocks = partition_parameters([s.stop - s.start for s in sharded.flat.slices], 3)
    for block in blocks:  # three ranks' updates, one after the other, make up the whole update
        sharded.step(region=sharded.flat.region(block))
        sharded.steps_taken -= 1  # one step, taken in three pieces
    sharded.steps_taken += 1
    reference.step()
    np.testing.assert_array_equal(sharded.flat.data, reference.flat.data)
    np.testing.assert_array_equal(sharded.exp_avg_sq, reference.exp_avg_sq)


def test_communicators_without_block_collectives_refuse_them_for_several_ranks():
    class TwoRanks(Communicator):
        world_size = 2

    with pytest.raises(NotImplementedError, match="sharded optimizer needs an MPI communicator"):
        TwoRanks().reduce_scatter_sum(np.zeros(4), [2, 2])
    with pytest.raises(ValueError, match="do not cut a buffer of 4"):
        SingleProcessCommunicator().allgather_blocks(np.zeros(4), [3])
