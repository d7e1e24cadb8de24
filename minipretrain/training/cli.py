"""``python -m minipretrain train | sample | eval``: run a config, then use what it trained.

    python -m minipretrain train --config configs/baby_gpt_char.toml [--set training.max_steps=100 ...]
    python -m minipretrain sample --run runs/baby-gpt-char --prompt "ROMEO:" --max-new-tokens 200
    python -m minipretrain eval --run runs/baby-gpt-char --split validation
    python -m minipretrain fill-mask --run runs/baby-bert-char --text "My l[MASK]rd"

A run folder holds ``config.json`` (the resolved config), ``tokenizer.json``, ``checkpoint.npz`` and
``log.jsonl``; what ``train`` promises about it (nothing written before the command is checked end to end, an
existing run replaced only with ``--overwrite``) is in :mod:`minipretrain.training.run_folder`. Errors are
raised, never printed here: ``minipretrain.cli.main`` turns them into one line and exit code 2.

``mpiexec -n N python -m minipretrain train ...`` trains data-parallel on N ranks (``make train-clm`` does, on
every core): the ranks check that they run the same config, rank 0 builds the data (download, tokenizer,
token cache) before the others read it, and rank 0 alone prints and writes the run folder. An error on any
rank ends every rank at once, with the message printed once.
"""
from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from ..cli import INTERRUPTED_EXIT
from ..errors import ModelKindError
from .config import ConfigError, load_config
from .recipe import build_datasets, build_objective, build_run, load_run, run_dir_for
from .run_folder import check_free_space, check_run_folder, claim_run_folder, write_run_files


def _train(args: argparse.Namespace) -> int:
    from ..distributed import end_every_rank_on_error, init_communicator

    config = load_config(args.config, args.set or [])
    comm = init_communicator("auto", timeout_s=config["training"].get("collective_timeout_s"),
                             device=args.device or config["training"].get("device"))  # CUDA: NCCL
    return end_every_rank_on_error(comm, lambda: _train_run(args, config, comm))


def _train_run(args: argparse.Namespace, config: dict[str, Any], comm: Any) -> int:
    from .trainer import PreTrainer

    say = print if comm.is_main else (lambda *_, **__: None)
    run_dir = Path(args.run_dir) if args.run_dir else run_dir_for(config)
    comm.check_agreement({"config": config, "run_dir": str(run_dir), "resume": args.resume, "device": args.device},
                         "run configuration (config file, --set overrides and options)")
    if comm.is_main:  # the run folder need only exist on rank 0's machine
        check_run_folder(run_dir, args.resume, args.overwrite)
    ranks = f" on {comm.world_size} ranks ({comm.backend})" if comm.world_size > 1 else ""
    say(f"run {config['name']!r} -> {run_dir}/{ranks}")
    started = time.perf_counter()
    if not comm.is_main:
        comm.barrier()  # rank 0 downloads the corpus, trains the tokenizer and writes the token cache first
    run = build_run(config)
    if comm.is_main:
        comm.barrier()
    say(f"data: {run.train_dataset}\n      {run.val_dataset}")
    say(f"model: {run.model.kind}, {run.model.num_parameters():,} parameters; objective: {run.objective.name}")
    training = dict(config["training"])
    if args.device:
        training["device"] = args.device
    trainer = PreTrainer(model=run.model, objective=run.objective, dataset=run.train_dataset,
                         eval_dataset=run.val_dataset, checkpoint_dir=run_dir, progress=not args.no_progress,
                         comm=comm, **training)
    if args.resume:  # the checkpoint must fit this model, objective and tokenizer before anything is written
        trainer.load_checkpoint(run_dir / "checkpoint.npz")
        if trainer.step >= trainer.config.max_steps:
            raise ConfigError(f"{run_dir} is already at step {trainer.step} = training.max_steps: nothing to train; "
                              f"raise it (--set training.max_steps={2 * trainer.step}) to continue")
    if comm.is_main:  # weights and AdamW's two moments: what each checkpoint holds, give or take the metadata
        check_free_space(run_dir, 3 * sum(p.data.nbytes for p in run.model.parameters()))
    with claim_run_folder(run_dir, args.resume, args.overwrite) if comm.is_main else nullcontext():
        if comm.is_main:
            write_run_files(run_dir, config, run.tokenizer)
        result = trainer.train()
    if result.stopped_early:  # Ctrl-C: the checkpoint is saved; exit at once, with the code scripts can tell apart
        say(f"\nstopped at step {trainer.step} ({result.stopped_early}); the checkpoint is saved: continue with "
            "--resume")
        return INTERRUPTED_EXIT
    wall = time.perf_counter() - started
    last = result.evaluations[-1] if result.evaluations else trainer.evaluate()  # every rank takes part
    rates = [r["tokens_per_s"] for r in trainer.history[len(trainer.history) // 10:]]
    mfus = [r["mfu"] for r in trainer.history[len(trainer.history) // 10:] if r.get("mfu") is not None]
    peak = "this machine's measured matmul peak" + (f" × {comm.world_size} ranks" if comm.world_size > 1 else "")
    say(f"\nfinished {result.steps} steps in {result.wall_time_s:.1f} s of training ({wall:.1f} s in all)")
    say(f"tokens seen: {result.tokens_seen:,}; median {np.median(rates):,.0f} tokens/s"
        + (f", MFU {100 * np.median(mfus):.1f}% of {peak}" if mfus else ""))
    # exp(loss) is a perplexity only when the loss is a token cross-entropy (not ELECTRA's MLM + 50·BCE)
    perplexity = (f"perplexity {last['val_perplexity']:.3f}, " if run.objective.loss_is_cross_entropy else "")
    say(f"final train loss {result.final_loss:.4f}; validation loss {last['val_loss']:.4f}, {perplexity}"
        f"accuracy {last['val_accuracy']:.4f}")
    # The yardsticks (seconds of n-gram counting) need no model: with several ranks the last one counts
    # while rank 0 writes the sample, and sends its table to rank 0, which prints it after the sample.
    yardsticks = run.objective.name == "clm" and not args.no_yardsticks
    counting_rank = comm.world_size - 1
    table = _yardstick_table(config, last["val_loss"]) if yardsticks and comm.rank == counting_rank else None
    if not args.no_sample and comm.is_main and hasattr(run.objective, "examples"):
        from .examples import show_examples

        show_examples(run, seed=int(training.get("seed", 0)))
    elif not args.no_sample and comm.is_main:
        _show_samples(run.model, run.tokenizer, run.objective.name, seed=int(training.get("seed", 0)))
    if yardsticks:
        table = comm.broadcast(table, root=counting_rank)
        say("\nyardsticks on the validation split (lower is better):\n" + table)
    return 0


def _yardstick_table(config: dict[str, Any], val_loss: float) -> str:
    """What counting (n-grams) and compressing reach on the same validation split, beside the model's loss."""
    from ..evaluation.yardsticks import corpus_yardsticks, format_table

    return format_table(corpus_yardsticks(config), model_loss=val_loss)


def _show_samples(model: Any, tokenizer: Any, objective: str, seed: int) -> None:
    from ..evaluation import fill_mask, generate

    if objective == "clm":
        prompt = np.array([_start_prompt(tokenizer)])
        ids = generate(model, prompt, max_new_tokens=300, temperature=0.8, top_k=None, seed=seed)
        print("\n--- sample ---\n" + tokenizer.decode(np.asarray(ids)[0].tolist()) + "\n--------------")
    else:
        mask = tokenizer.decode([tokenizer.mask_id]) if hasattr(tokenizer, "decode") else "[MASK]"
        for text in ("ROMEO: What light through yonder window br[MASK]aks?", "KING HENRY: My l[MASK]rd, the queen",
                     "First Citizen: We are acc[MASK]unted poor citizens"):
            predictions = fill_mask(model, tokenizer, text.replace("[MASK]", mask), top_k=3)
            shown = ", ".join(f"{p['token_str']!r} {p['score']:.2f}" for p in predictions)
            print(f"fill-mask: {text}\n    -> {shown}")


def _start_prompt(tokenizer: Any) -> list[int]:
    """A newline where the vocabulary has one (nanoGPT's start for Shakespeare), else the end-of-text token."""
    try:
        return tokenizer.encode("\n")[:1] or [tokenizer.eos_id]
    except ValueError:
        return [tokenizer.eos_id]


def _sample(args: argparse.Namespace) -> int:
    from ..evaluation import generate

    config, tokenizer, model = load_run(args.run)
    if model.kind != "gpt":
        raise ModelKindError(f"sample generates text, which needs a causal (GPT) run; {args.run} holds a "
                             f"{model.kind!r} model: use `python -m minipretrain fill-mask --run {args.run} "
                             "--text '...[MASK]...'`")
    prompt = tokenizer.encode(args.prompt) if args.prompt else _start_prompt(tokenizer)
    ids = generate(model, np.array([prompt]), max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                   top_k=args.top_k, seed=args.seed)
    print(tokenizer.decode(np.asarray(ids)[0].tolist()))
    return 0


def _fill_mask(args: argparse.Namespace) -> int:
    from ..evaluation import fill_mask

    config, tokenizer, model = load_run(args.run)
    if model.kind != "bert":
        raise ModelKindError(f"fill-mask needs a masked (BERT) run; {args.run} holds a {model.kind!r} model: "
                             f"use `python -m minipretrain sample --run {args.run}`")
    predictions = fill_mask(model, tokenizer, args.text, top_k=args.top_k)
    for per_mask in predictions if isinstance(predictions[0], list) else [predictions]:
        print("  ".join(f"{p['token_str']!r} {p['score']:.3f}" for p in per_mask))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from ..evaluation.perplexity import evaluate

    config, tokenizer, model = load_run(args.run)
    data = dict(config["data"], eval_split=args.split)
    _, dataset = build_datasets(data, tokenizer, config["objective"].get("name", "clm"))
    objective = build_objective(config, model, tokenizer)
    result = evaluate(model, dataset, objective, batch_size=args.batch_size)
    print(json.dumps({"run": str(args.run), "split": args.split, **result.as_dict(prefix="")}, indent=2))
    return 0


def add_parser(subparsers: Any) -> None:
    """Register ``train``, ``sample`` and ``eval``."""
    train = subparsers.add_parser("train", help="train a model from a TOML config")
    train.add_argument("--config", required=True, help="a TOML run config, e.g. configs/baby_gpt_char.toml")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a config value, e.g. --set training.max_steps=100 (repeatable)")
    train.add_argument("--run-dir", help="where to write the run (default runs/<name>)")
    train.add_argument("--device", choices=["cpu", "cuda"], help="train on this device")
    train.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the run already in the run folder (its checkpoint and log are removed)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--no-sample", action="store_true", help="skip the sample printed at the end")
    train.add_argument("--no-yardsticks", action="store_true",
                       help="skip the n-gram and compressor yardsticks printed beside a CLM run's validation loss")
    train.set_defaults(func=_train)

    sample = subparsers.add_parser("sample", help="generate text from a trained GPT run")
    sample.add_argument("--run", required=True, help="a run folder, e.g. runs/baby-gpt-char")
    sample.add_argument("--prompt", default="", help="text to continue (default: a newline)")
    sample.add_argument("--max-new-tokens", type=int, default=300)
    sample.add_argument("--temperature", type=float, default=0.8)
    sample.add_argument("--top-k", type=int, default=None)
    sample.add_argument("--seed", type=int, default=0)
    sample.set_defaults(func=_sample)

    filling = subparsers.add_parser("fill-mask", help="predict the [MASK] tokens of a text with a trained BERT run")
    filling.add_argument("--run", required=True, help="a run folder, e.g. runs/baby-bert-char")
    filling.add_argument("--text", required=True, help="text with one or more [MASK] tokens")
    filling.add_argument("--top-k", type=int, default=5)
    filling.set_defaults(func=_fill_mask)

    evaluation = subparsers.add_parser("eval", help="evaluate a trained run on a split")
    evaluation.add_argument("--run", required=True, help="a run folder, e.g. runs/baby-gpt-char")
    evaluation.add_argument("--split", default="validation", choices=["train", "validation", "test"])
    evaluation.add_argument("--batch-size", type=int, default=32)
    evaluation.set_defaults(func=_eval)
