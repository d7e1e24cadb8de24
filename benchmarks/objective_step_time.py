"""Step time of T5 (span corruption) and ELECTRA (replaced-token detection) beside BERT (masked LM), each in the
budget of its ``configs/baby_*_char.toml`` (same data, width, batch, sequence length), measured A/B-interleaved.

    MINIPRETRAIN_DATA_MIRROR=... .venv/bin/python benchmarks/objective_step_time.py --repeats 12

Each repeat runs one ``PreTrainer.train_step`` of every config in turn (BERT, T5, ELECTRA, BERT, ...), after two
untimed warm-up steps each, so a load change on a shared machine hits all of them alike: the medians' *ratio* to
BERT is what the figures say; their absolute values are the machine's at that moment.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from minipretrain.training import PreTrainer
from minipretrain.training.config import load_config
from minipretrain.training.recipe import build_run

CONFIGS = {"bert": "configs/baby_bert_char.toml", "t5": "configs/baby_t5_char.toml",
           "electra": "configs/baby_electra_char.toml"}


def trainer_for(path: str) -> PreTrainer:
    config = load_config(path, [])
    run = build_run(config)
    training = {k: v for k, v in config["training"].items() if k not in ("eval_interval", "log_interval")}
    return PreTrainer(model=run.model, objective=run.objective, dataset=run.train_dataset, progress=False,
                      eval_interval=0, **training)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=12)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    trainers = {name: trainer_for(path) for name, path in CONFIGS.items()}
    for trainer in trainers.values():
        for _ in range(2):
            trainer.train_step()
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(args.repeats):
        for name, trainer in trainers.items():
            started = time.perf_counter()
            trainer.train_step()
            times[name].append(time.perf_counter() - started)
    bert = statistics.median(times["bert"])
    print(f"{'model':<8} {'params':>9} {'median ms/step':>15} {'ratio to BERT':>14}  (repeats {args.repeats})")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<8} {trainers[name].model.num_parameters():>9,} {1e3 * median:>15.1f} {median / bert:>14.2f}")


if __name__ == "__main__":
    main()
