"""COURSE.md §10: K members trained together as one stacked network equal K separate runs."""

import io
import math

import pytest
import torch
import torch.nn.functional as F

from worker.engine import load_dataset, parse_spec, train
from worker.engine.datasets import derive_seed
from worker.engine.ensemble import mean_log_probs, vote
from worker.engine.models import build_model, build_network
from worker.engine.optim import build_optimizer
from worker.engine.predict import Predictor
from worker.engine.train import evaluate

K = 3


def separate_run(spec, seed: int, epochs: int) -> list[dict]:
    """One member trained alone, written out by hand: init from seed, order from seed, the
    split of spec.seed. Per epoch: validation loss/accuracy, train loss and the state."""
    data = load_dataset(spec)
    net, _ = build_network(spec, data.input_shape, len(data.classes), [seed])
    net.train()
    opt = build_optimizer(spec.optim, net)
    order = torch.Generator().manual_seed(derive_seed(seed, "order"))
    n, m = len(data.y_train), spec.optim.batch_size
    history = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=order)
        Xs, ys = data.X_train[perm], data.y_train[perm]
        losses = []
        for i in range(n // m):
            loss = F.cross_entropy(net(Xs[i * m:(i + 1) * m]), ys[i * m:(i + 1) * m])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        val = evaluate(net, data.X_val, data.y_val)
        history.append({"val_loss": val["loss"].item(), "val_accuracy": val["accuracy"].item(),
                        "train_loss": sum(losses) / len(losses),
                        "state": {k: v.clone() for k, v in net.state_dict().items()}})
    return history


@pytest.mark.parametrize("model, optim", [
    ({"hidden": [16]}, {}),
    ({"hidden": [16, 8], "batchnorm": True}, {"method": "adam", "lr": 0.01,
                                               "weight_decay": 0.001}),
    # A gentle rate: with η = 0.1 this CNN's trajectory is chaotic enough that a one-ulp
    # difference (a grouped convolution sums in another order) visibly grows within 3 epochs.
    ({"arch": "cnn", "hidden": [4, 8], "batchnorm": True}, {"lr": 0.01, "weight_decay": 0.001}),
], ids=["mlp-sgd", "mlp-bn-adam-l2", "cnn-bn-sgd-l2"])
def test_stacked_members_equal_separate_runs(model, optim):
    epochs = 3
    spec = parse_spec({"seed": 4, "model": model, "optim": optim,
                       "training": {"max_epochs": epochs}, "ensemble": {"members": K}})
    out = train(spec, device="cpu")
    refs = [separate_run(spec, spec.seed + k, epochs) for k in range(K)]
    n_val = len(load_dataset(spec).y_val)
    for e, metrics in enumerate(out.metrics):
        for k in range(K):
            assert metrics[f"member/{k}/val_loss"] == pytest.approx(refs[k][e]["val_loss"],
                                                                   rel=1e-4)
            # Round-off may flip one borderline example, no more.
            assert abs(metrics[f"member/{k}/val_accuracy"]
                       - refs[k][e]["val_accuracy"]) <= 1.01 / n_val
        assert metrics["train_loss"] == pytest.approx(
            sum(r[e]["train_loss"] for r in refs) / K, rel=1e-4)
    best = out.result["best_epoch"]
    assert best >= 1
    for k in range(K):
        for name, v in refs[k][best - 1]["state"].items():
            torch.testing.assert_close(out.state_dict[name][k], v, rtol=1e-3, atol=1e-4)


def test_member_zero_is_the_single_run_with_the_same_seed():
    base = {"seed": 2, "model": {"hidden": [16]}, "training": {"max_epochs": 2}}
    single = train(parse_spec(base), device="cpu")
    ens = train(parse_spec({**base, "ensemble": {"members": 2}}), device="cpu")
    for s, e in zip(single.metrics, ens.metrics, strict=True):
        assert e["member/0/val_loss"] == pytest.approx(s["val_loss"], rel=1e-5)
        assert e["member/1/val_loss"] != pytest.approx(s["val_loss"], rel=1e-5)


def test_result_table_matches_each_member_on_the_test_set():
    spec = parse_spec({"model": {"hidden": [16]}, "training": {"max_epochs": 2},
                       "ensemble": {"members": 4, "combine": "vote"}})
    out = train(spec, device="cpu")
    r = out.result["ensemble"]
    assert set(r) == {"member_test_accuracy", "mean_member_accuracy", "ensemble_test_accuracy",
                      "gain", "combine", "vote_test_accuracy", "mean_test_accuracy",
                      "best_member_accuracy", "gain_over_best", "select", "member_best_epochs"}
    data = load_dataset(spec)
    model = build_model(spec, out.input_shape, 10)
    model.load_state_dict(out.state_dict)
    assert model.members == 4
    for k in range(4):
        acc = evaluate(model.member(k), data.X_test, data.y_test)["accuracy"].item()
        assert r["member_test_accuracy"][k] == pytest.approx(acc, abs=1e-6)
    assert r["mean_member_accuracy"] == pytest.approx(sum(r["member_test_accuracy"]) / 4)
    assert r["combine"] == "vote" and r["ensemble_test_accuracy"] == r["vote_test_accuracy"]
    assert r["gain"] == pytest.approx(r["ensemble_test_accuracy"] - r["mean_member_accuracy"])
    assert r["best_member_accuracy"] == max(r["member_test_accuracy"])
    assert r["gain_over_best"] == pytest.approx(
        r["ensemble_test_accuracy"] - max(r["member_test_accuracy"]))
    assert out.result["test_accuracy"] == r["vote_test_accuracy"]
    # The mean combination by hand.
    with torch.no_grad():
        probs = torch.stack([torch.softmax(model.member(k).eval()(data.X_test), -1)
                             for k in range(4)]).mean(0)
    mean_acc = (probs.argmax(1) == data.y_test).double().mean().item()
    assert r["mean_test_accuracy"] == pytest.approx(mean_acc, abs=1e-6)
    assert out.result["test_loss"] == pytest.approx(
        F.nll_loss(probs.log(), data.y_test).item(), rel=1e-4)

    # The saved ensemble predicts the members' mean probability.
    blob = io.BytesIO()
    torch.save({"spec": spec.model_dump(), "state_dict": out.state_dict, "classes": out.classes,
                "input_shape": list(out.input_shape)}, blob)
    predictor = Predictor.from_bytes(blob.getvalue())
    got = torch.tensor(predictor.probabilities(data.X_test[:5].tolist()), dtype=torch.float64)
    torch.testing.assert_close(got, probs[:5].double(), rtol=1e-4, atol=1e-6)


def test_vote_and_mean_combinations():
    # Three members, four examples, three classes.
    p = torch.tensor([
        [[0.6, 0.3, 0.1], [0.4, 0.5, 0.1], [0.2, 0.2, 0.6], [0.7, 0.1, 0.2]],
        [[0.5, 0.4, 0.1], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4], [0.05, 0.85, 0.1]],
        [[0.1, 0.8, 0.1], [0.4, 0.3, 0.3], [0.1, 0.1, 0.8], [0.05, 0.05, 0.9]],
    ])
    lp = p.log()
    torch.testing.assert_close(mean_log_probs(lp).exp(), p.mean(0))
    # Votes: 0,0,1 → 0 | 1,1,0 → 1 | 2,0,2 → 2 | 0,1,2 tie → the highest mean probability (2).
    assert vote(lp).tolist() == [0, 1, 2, 2]
    assert p.mean(0).argmax(1).tolist() == [1, 1, 2, 2]  # the mean can disagree with the vote


def test_ensemble_with_dropout_and_full_pass_runs():
    spec = parse_spec({"model": {"arch": "cnn", "hidden": [4], "batchnorm": True,
                                 "batchnorm_eval": "full_pass",
                                 "dropout": {"p_inc_hidden": 0.8, "mc_samples": 4}},
                       "training": {"max_epochs": 1}, "ensemble": {"members": 2}})
    out = train(spec, device="cpu")
    assert out.status == "succeeded"
    assert math.isfinite(out.result["test_accuracy_mc"])
    assert len(out.result["ensemble"]["member_test_accuracy"]) == 2
    assert out.state_dict["bn1.running_mean"].shape == (2, 4)
