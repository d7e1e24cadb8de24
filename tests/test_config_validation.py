"""Run configs are checked against what reads them: every table refuses unknown keys (naming the known ones
and the close match), values have the type of their dataclass field, and a preset never loses silently to
explicit sizes."""
from __future__ import annotations

from pathlib import Path

import pytest

from minipretrain.training import ConfigError, load_config
from minipretrain.training.recipe import model_options

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.fixture()
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "run.toml"
    path.write_text('name = "x"\n[model]\nkind = "gpt"\nn_layer = 1\nn_head = 2\nn_embd = 16\n'
                    '[data]\npath = "corpus.txt"\nseq_len = 16\n[objective]\nname = "clm"\n'
                    '[training]\nmax_steps = 4\n')
    return path


@pytest.mark.parametrize("override, suggestion", [
    ("data.seq_length=16", "data.seq_len"),
    ("objective.mask_probability=0.9", "objective.mask_prob"),
    ("training.max_step=3", "training.max_steps"),
    ("model.n_layers=3", "model.n_layer"),
    ("max_steps=3", "training.max_steps"),
    ("max_steps=12.5", "training.max_steps"),
])
def test_unknown_keys_are_refused_in_every_table_with_the_close_match(config_file: Path, override: str,
                                                                        suggestion: str) -> None:
    options = ["objective.name=mlm", "model.kind=bert"] if override.startswith("objective") else []
    with pytest.raises(ConfigError, match=f"did you mean {suggestion}") as error:
        load_config(config_file, [*options, override])
    assert "known" in str(error.value)


def test_unknown_keys_in_a_file_are_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('nmae = "x"\n[data]\ncorpus = "tinyshakespeare"\ntokeniser = "char"\n')
    with pytest.raises(ConfigError, match=r"unknown top-level key 'nmae'.*did you mean name"):
        load_config(path)
    path.write_text('[data]\ncorpus = "tinyshakespeare"\ntokeniser = "char"\n')
    with pytest.raises(ConfigError, match=r"\[data\] has no key 'tokeniser'.*did you mean data.tokenizer.*known: "):
        load_config(path)


@pytest.mark.parametrize("override, message", [
    ("training.max_steps=abc", r"training.max_steps must be an integer, got 'abc'"),
    ("training.max_steps=12.5", r"training.max_steps must be an integer, got 12.5"),
    ("training.batch_size=2.5", r"training.batch_size must be an integer, got 2.5"),
    ("data.seq_len=abc", r"data.seq_len must be an integer, got 'abc'"),
    ("training.learning_rate=fast", r"training.learning_rate must be a number, got 'fast'"),
    ("training.betas=0.9", r"training.betas must be a list of 2 numbers, got 0.9"),
    ("training.grad_clip=true", r"training.grad_clip must be a number or none, got True"),
    ("model.dropout=high", r"model.dropout must be a number, got 'high'"),
    ("data.tokenizer=3", r"data.tokenizer must be a string, got 3"),
    ("name=3", r"name must be a string, got 3"),
])
def test_ill_typed_values_are_refused_with_the_field_and_the_type(config_file: Path, override: str,
                                                                   message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(config_file, [override])


def test_well_typed_values_pass_and_integers_count_as_numbers(config_file: Path) -> None:
    config = load_config(config_file, ["training.learning_rate=1", "training.grad_clip=none",
                                       "training.betas=[0.9, 0.99]", "training.min_lr=1e-5"])
    assert config["training"]["learning_rate"] == 1 and config["training"]["grad_clip"] is None


def test_a_preset_and_explicit_sizes_that_disagree_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[model]\npreset = "gpt-0.1m"\nn_layer = 6\n[data]\ncorpus = "tinyshakespeare"\n')
    with pytest.raises(ConfigError, match=r"model.preset = 'gpt-0.1m'.*n_layer = 2.*model.n_layer = 6"):
        load_config(path)
    path.write_text('[model]\npreset = "gpt-0.1m"\nkind = "bert"\n[data]\ncorpus = "tinyshakespeare"\n')
    with pytest.raises(ConfigError, match=r"model.preset = 'gpt-0.1m'.*kind = 'gpt'.*model.kind = 'bert'"):
        load_config(path)
    path.write_text('[model]\npreset = "gpt-0.1x"\n[data]\ncorpus = "tinyshakespeare"\n')
    with pytest.raises(ConfigError, match=r"unknown model.preset 'gpt-0.1x'.*did you mean gpt-0.1m"):
        load_config(path)
    # Repeating the preset's own value, or choosing the context length, is no conflict.
    path.write_text('[model]\npreset = "gpt-0.1m"\nn_layer = 2\nblock_size = 32\ndropout = 0.1\n'
                    '[data]\ncorpus = "tinyshakespeare"\nseq_len = 32\n')
    assert model_options(load_config(path)) == ("gpt-0.1m", {"n_layer": 2, "block_size": 32, "dropout": 0.1,
                                                             "seed": 0})


@pytest.mark.parametrize("name", ["baby_gpt_char.toml", "baby_bert_char.toml"])
def test_the_shipped_configs_load_and_keep_their_model(name: str) -> None:
    config = load_config(CONFIGS / name)
    kind, options = model_options(config)
    assert (kind, options["n_layer"], options["n_head"], options["n_embd"], options["block_size"]) == \
        (config["model"]["kind"], 4, 4, 128, 64)
    assert config["training"]["max_steps"] == 2000 and config["data"]["seq_len"] == 64
