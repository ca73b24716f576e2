"""`make train-signal` rebuilds the shipped weights byte for byte from the shared data."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from stream.core.turn_model import SHIPPED_VERSION
from train import signal_data, train_signal

pytest.importorskip(
    "sklearn", reason="the training extras are not installed: pip install -e '.[train]'"
)


def test_training_rebuilds_the_shipped_weights_byte_for_byte(tmp_path: Path) -> None:
    manifest = train_signal.train(signal_data.DATA_ROOT, tmp_path)
    shipped = resources.files("stream.models").joinpath(f"{SHIPPED_VERSION}.json").read_bytes()
    rebuilt = (tmp_path / f"{SHIPPED_VERSION}.json").read_bytes()
    assert rebuilt == shipped
    assert manifest["weights_file"] == f"{SHIPPED_VERSION}.json"
    # The manifest next to the shipped weights is the one training writes: same data, split,
    # settings and thresholds (source hashes are informational: an edit that leaves the weights
    # alone does not need a retrain).
    shipped_manifest = json.loads(
        resources.files("stream.models")
        .joinpath(f"{SHIPPED_VERSION}.manifest.json")
        .read_text(encoding="utf-8")
    )
    for recorded in (manifest, shipped_manifest):
        recorded.pop("source_sha256")
    assert manifest == shipped_manifest


def test_the_split_is_fixed_and_disjoint() -> None:
    # The same key always lands in the same part, whatever the seed of training.
    assert signal_data.part_of("ReDial", "0") == signal_data.part_of("ReDial", "0")
    sets = signal_data.load_all()
    for name, turns in sets.items():
        groups: dict[str, set[str]] = {}
        for turn in turns:
            groups.setdefault(turn.group, set()).add(turn.part)
        assert all(len(parts) == 1 for parts in groups.values()), name
        shares = {p: sum(t.part == p for t in turns) / len(turns) for p in ("train", "dev", "test")}
        assert 0.5 < shares["train"] < 0.7 and 0.1 < shares["test"] < 0.3, (name, shares)
