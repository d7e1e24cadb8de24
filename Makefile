# minipretrain — everyday commands. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Corpora come from the offline mirror beside the checkout when it is there, else from their upstream URLs.
MIRROR ?= $(abspath ../shared/data)
export MINIPRETRAIN_DATA_MIRROR ?= $(if $(wildcard $(MIRROR)),$(MIRROR),)
ARGS ?=
# What `make install` puts in .venv: the dev extras and MPI (mpi4py + the mpich wheel, which ships `mpiexec`);
# CI (.ci/run) adds the parity references with `make test EXTRAS=dev,reference,mpi`.
EXTRAS ?= dev,mpi
STAMP  := $(VENV)/.installed-$(EXTRAS)
comma  := ,
EXTRAS_WITHOUT_MPI := $(subst $(comma)mpi,,$(subst mpi$(comma),,$(EXTRAS)))
# The course: where `make exercises` writes the student copy, and which exercise `make check EX=...` grades.
EXERCISES_DIR ?= student
EX ?=
BUG ?=
# One BLAS thread by default: on a 2-core machine a second thread gains little for these small matrices and
# loses several times over as soon as anything else runs (measured: 137 vs 735 ms per baby-GPT step with a
# load of 3). `make train-clm OPENBLAS_NUM_THREADS=2` overrides it.
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
# Trainings and experiments run data-parallel on NPROC ranks (default: every core this shell may use), one BLAS
# thread each, through the launcher: `mpiexec -n $(NPROC) python -m minipretrain ...`, or one process (saying
# why in one line) when NPROC=1 or MPI cannot start. Across machines: MPIEXEC_ARGS="-hosts node1,node2" NPROC=8.
NPROC ?= $(shell nproc 2>/dev/null || echo 1)
MPIEXEC_ARGS ?=
LAUNCH = $(PY) -m minipretrain.distributed.launch --nproc $(NPROC) --mpiexec-args "$(MPIEXEC_ARGS)" --

.PHONY: help install test test-fast train-clm train-mlm train-t5 train-electra sample data bench bench-gpu experiments \
        exp-clm-vs-mlm exp-scaling exp-data-quality exp-learning-curves exp-next-token clean \
        lessons exercises check check-selftest bugs bug

help:
	@echo "make train-clm       train nanoGPT's baby GPT on character-level Tiny Shakespeare, then sample"
	@echo "make train-mlm       the BERT counterpart with masked language modelling, then fill-mask"
	@echo "make train-t5        T5 span corruption in the same budget, then span reconstructions"
	@echo "make train-electra   ELECTRA replaced-token detection in the same budget, then flagged tokens"
	@echo "make test            the whole test suite with coverage of minipretrain/"
	@echo "make bench           speed and memory benchmarks (figures, not tests); NANOGPT_DIR=... adds nanoGPT's train.py"
	@echo "make bench-gpu       on a GPU machine: the gpu tests on real CuPy, then GPU throughput (8 min)"
	@echo "make experiments     the research experiments (writes docs/results/); one of them: make exp-next-token"
	@echo "make data            fetch the default corpora into data/"
	@echo "make install         create .venv and install minipretrain with its dev and mpi extras (EXTRAS=dev,mpi,reference adds torch and transformers)"
	@echo "make lessons         install JupyterLab into .venv and open the course in notebooks/"
	@echo "make exercises       write the student copy (EXERCISES_DIR=student) with every exercise blanked"
	@echo "make check [EX=id]   grade the exercises (here or in the student copy) and print a table"
	@echo "make bugs            verify that every seeded bug is caught by a test; make bug BUG=id plants one"
	@echo "pass extra options with ARGS=\"--set training.max_steps=200\"; NPROC=1 trains in one process (default: all cores)"

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]" || { test "$(EXTRAS_WITHOUT_MPI)" != "$(EXTRAS)" && \
		echo "make install: the mpi extra (mpi4py, mpich) does not install here; training will run in one process" && \
		$(PY) -m pip install -q -e ".[$(EXTRAS_WITHOUT_MPI)]"; }
	touch $(STAMP)

# Two test workers on two cores, each with one BLAS thread (set above). The gpu-marked tests run on the
# strict fake device (minipretrain/testing/fake_cupy.py); on a machine with a GPU, `make test FAKE_GPU=0`.
FAKE_GPU ?= 1
test: install
	MINIPRETRAIN_FAKE_CUPY=$(FAKE_GPU) $(PY) -m pytest -q -n 2 --dist loadfile --cov=minipretrain \
		--cov-report=term-missing:skip-covered --cov-fail-under=90 tests

test-fast: install
	$(PY) -m pytest -q -x -n 2 tests

train-clm: install
	$(LAUNCH) train --config configs/baby_gpt_char.toml $(ARGS)

train-mlm: install
	$(LAUNCH) train --config configs/baby_bert_char.toml $(ARGS)

train-t5: install
	$(LAUNCH) train --config configs/baby_t5_char.toml $(ARGS)

train-electra: install
	$(LAUNCH) train --config configs/baby_electra_char.toml $(ARGS)

sample: install
	$(PY) -m minipretrain sample --run runs/baby-gpt-char $(ARGS)

data: install
	$(PY) -m minipretrain data download tinyshakespeare
	$(PY) -m minipretrain data download wikitext-2 --files wiki.valid.tokens wiki.test.tokens wiki.test.raw

bench: install
	$(PY) benchmarks/ops.py
	$(PY) benchmarks/model.py
	$(PY) benchmarks/train.py
	NANOGPT_DIR="$(NANOGPT_DIR)" $(PY) benchmarks/train_recipe.py --nproc $(NPROC)
	$(PY) benchmarks/train_recipe.py --nproc $(NPROC) --width 256 --block 128 --steps 20
	$(PY) benchmarks/tokenizer.py

bench-gpu: install
	$(PY) benchmarks/gpu.py $(ARGS)

experiments: exp-clm-vs-mlm exp-scaling exp-data-quality exp-learning-curves exp-next-token

exp-clm-vs-mlm: install
	$(LAUNCH) experiment clm-vs-mlm $(ARGS)

exp-scaling: install
	$(LAUNCH) experiment scaling $(ARGS)

exp-data-quality: install
	$(LAUNCH) experiment data-quality $(ARGS)

exp-learning-curves: install
	$(LAUNCH) experiment learning-curves $(ARGS)

# Q1 (why next-token prediction works): Markov chains of order 1-3 and Tiny Shakespeare, 5 seeds; writes
# docs/results/next_token/ and this question's records in docs/results/claims.json.
exp-next-token: install
	$(LAUNCH) experiment next-token $(ARGS)

# The course. JupyterLab is installed on demand: the lessons run under the test suite without it.
lessons: install
	$(PY) -m pip install -q jupyterlab
	$(PY) -m jupyterlab notebooks

exercises: install
	$(PY) -m minipretrain.course exercises --dest $(EXERCISES_DIR)

check: install
	$(PY) -m minipretrain.course check --ex "$(EX)"

# CI: every check fails in a fresh copy, passes here, and putting one block back makes exactly its own pass.
check-selftest: install
	$(PY) -m minipretrain.course selftest

bugs: install
	$(PY) -m minipretrain.course bugs --bug "$(BUG)"

bug: install
	$(PY) -m minipretrain.course bugs --bug "$(BUG)" --plant $(EXERCISES_DIR)-bug-$(BUG)

clean:
	rm -rf $(VENV) .pytest_cache .coverage htmlcov
