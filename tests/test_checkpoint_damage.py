"""A damaged checkpoint is one ``CheckpointError`` that names the file and says it is damaged, whatever the
damage (truncated, a flipped bit, empty, a metadata document of the wrong JSON type); a malicious one (object
arrays, a pickle payload) is refused without running anything."""
from __future__ import annotations

import json
import pathlib
from pathlib import Path

import numpy as np
import pytest

from minipretrain.training import CheckpointError, load_checkpoint, save_checkpoint


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    return save_checkpoint(tmp_path / "checkpoint.npz", {"model": {"w": rng.normal(size=(64, 64))}, "step": 3})


def damaged(path: Path) -> str:
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert str(path) in message and "damaged" in message, message
    return message


def test_a_good_checkpoint_round_trips(good: Path) -> None:
    state = load_checkpoint(good)
    assert state["step"] == 3 and state["model"]["w"].shape == (64, 64)


def test_a_truncated_checkpoint(good: Path) -> None:
    data = good.read_bytes()
    for keep in (len(data) // 2, len(data) - 10, 100):
        good.write_bytes(data[:keep])
        damaged(good)


def test_a_flipped_bit_in_the_weights(good: Path) -> None:
    data = bytearray(good.read_bytes())
    offset = data.index(np.float64(load_checkpoint(good)["model"]["w"][10, 10]).tobytes())
    data[offset] ^= 0x10
    good.write_bytes(bytes(data))
    damaged(good)


def test_a_flipped_bit_anywhere_is_an_error_or_a_clean_load(good: Path) -> None:
    data = good.read_bytes()
    for offset in range(0, len(data), max(1, len(data) // 97)):
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        good.write_bytes(bytes(flipped))
        try:
            load_checkpoint(good)  # a flip in padding or an unused header field may go unnoticed
        except CheckpointError as error:
            assert str(good) in str(error)


def test_an_empty_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(b"")
    damaged(path)


@pytest.mark.parametrize("meta", ["[1, 2, 3]", '"a string"', "42", "null", "{not json"])
def test_metadata_of_the_wrong_json_type(tmp_path: Path, meta: str) -> None:
    path = tmp_path / "checkpoint.npz"
    np.savez(path, __meta__=np.array(meta))
    damaged(path)


def test_metadata_naming_a_missing_array(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.npz"
    np.savez(path, __meta__=np.array(json.dumps({"format_version": 1, "model": {"__array__": "/model/w"}})))
    damaged(path)


def test_a_pickle_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (pathlib.Path.touch, (marker,))

    path = tmp_path / "checkpoint.npz"
    np.savez(path, __meta__=np.array(json.dumps({"format_version": 1, "x": {"__array__": "x"}})),
             x=np.array([Payload()], dtype=object))
    with pytest.raises(CheckpointError, match="not a minipretrain checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()
    np.savez(path, __meta__=np.array([Payload()], dtype=object))  # the metadata itself a pickle
    with pytest.raises(CheckpointError, match="not a minipretrain checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_file_that_is_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.npz"
    path.write_text("this is a text file")
    damaged(path)
