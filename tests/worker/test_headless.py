"""``epoque train``: one run headless, results in a folder whose model.pt is the same model
file the lab stores, so it loads for prediction."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from backend.cli import main
from worker.engine import load_dataset, parse_spec
from worker.engine.predict import Predictor


def test_epoque_trains_a_folder_whose_model_predicts(tmp_path: Path) -> None:
    spec_file = tmp_path / "digits.json"
    spec_data = {"model": {"hidden": [16]}, "training": {"max_epochs": 2}, "device": "cpu"}
    spec_file.write_text(json.dumps(spec_data))
    out = tmp_path / "out"
    assert main(["train", str(spec_file), "--out", str(out), "--threads", "1"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "succeeded" and result["kept"] == "last"

    predictor = Predictor.from_bytes((out / "model.pt").read_bytes())
    assert predictor.input_shape == (1, 8, 8) and predictor.classes == [str(i) for i in range(10)]
    data = load_dataset(parse_spec(spec_data))
    probs = torch.tensor(predictor.probabilities(data.X_test.tolist()))
    accuracy = (probs.argmax(1) == data.y_test).double().mean().item()
    assert abs(accuracy - result["test_accuracy"]) < 1e-6  # the returned model's figure
