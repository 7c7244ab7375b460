"""The training options of SPEC.md are accepted, and combinations that cannot work are refused
with a reason."""

import pytest
from pydantic import ValidationError

from worker.engine import parse_spec


@pytest.mark.parametrize("spec", [
    {"model": {"arch": "cnn", "hidden": [16, 32]}},
    {"model": {"batchnorm": True, "batchnorm_eval": "full_pass"}},
    {"model": {"dropout": {"p_inc_input": 0.8, "p_inc_hidden": 0.5, "inference": "mc",
                           "mc_samples": 10}}},
    *({"model": {"init": {"scheme": s}}} for s in (
        "pytorch", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
        "normal", "constant", "zeros")),
    {"model": {"init": {"scheme": "constant", "value": 0.1}}},
    {"optim": {"method": "adam", "lr": 0.001, "weight_decay": 0.0005}},
    {"optim": {"weight_decay": 0.01, "batch_size": 1}},
    {"ensemble": {"members": 64, "combine": "vote"}},
    {"ensemble": {"members": 4}, "device": "cuda"},
    {"diagnostics": {"grad_noise": True, "boundary": "off"}},
    {"data": {"dataset": "moons"}, "diagnostics": {"boundary": "on"}},
    {"training": {"log_every_steps": 5}},
])
def test_options_are_available(spec):
    """Each option is taken as given: none dropped, renamed or coerced on the way in."""
    parsed = parse_spec(spec).model_dump(mode="json")
    _assert_taken(spec, parsed, "spec")


def _assert_taken(given, parsed, path):
    if isinstance(given, dict):
        for key, value in given.items():
            assert key in parsed, f"{path}.{key} is not in the parsed spec"
            _assert_taken(value, parsed[key], f"{path}.{key}")
    else:
        assert parsed == given, f"{path}: asked {given!r}, parsed {parsed!r}"


@pytest.mark.parametrize("spec, reason", [
    ({"model": {"batchnorm": True}, "optim": {"batch_size": 1}}, "batch_size of at least 2"),
    ({"data": {"dataset": "moons"}, "model": {"arch": "cnn"}}, "use arch 'mlp'"),
    ({"diagnostics": {"boundary": True}}, "needs a 2-D dataset"),
    ({"ensemble": {"members": 65}}, "less than or equal to 64"),
    ({"optim": {"weight_decay": -1}}, "greater than or equal to 0"),
    ({"model": {"dropout": {"p_inc_hidden": 0}}}, "greater than 0"),
    ({"training": {"log_every_steps": 0}}, "greater than or equal to 1"),
])
def test_impossible_combinations_are_refused(spec, reason):
    with pytest.raises(ValidationError, match=reason):
        parse_spec(spec)
