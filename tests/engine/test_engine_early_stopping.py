"""COURSE.md §3, the slide's loop taken literally."""

import pytest

from worker.engine.early_stopping import EarlyStopping, replay


def slide_loop(initial: float, accuracies: list[float], p: int) -> tuple[int, int]:
    """The slide, transcribed: returns (epochs run, best epoch) with epochs from 1."""
    t, T, best, best_t = 0, p, initial, None
    while t < T and t < len(accuracies):
        acc = accuracies[t]  # one epoch of minibatch updates
        if acc > best:
            best, best_t, T = acc, t, t + p
        t += 1
    return t, (0 if best_t is None else best_t + 1)


def engine_loop(initial: float, accuracies: list[float], p: int) -> tuple[int, int]:
    es = EarlyStopping(p, "val_accuracy", initial)
    epoch = 0
    for epoch, acc in enumerate(accuracies, start=1):
        es.update(epoch, acc)
        if es.should_stop(epoch):
            break
    return epoch, es.best_epoch


@pytest.mark.parametrize("p", [1, 2, 3, 5])
@pytest.mark.parametrize("accs", [
    [0.5, 0.6, 0.6, 0.55, 0.7, 0.7, 0.69, 0.68, 0.71, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
    [0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8],
    [0.05, 0.05, 0.05, 0.05, 0.05, 0.05],  # never beats the initial model
])
def test_matches_the_slide(p, accs):
    assert engine_loop(0.1, accs, p) == slide_loop(0.1, accs, p)
    # the what-if's replay of a stored curve is the same rule (best, stopped) = (z*, t)
    assert replay(accs, p, "val_accuracy", 0.1)[1::-1] == slide_loop(0.1, accs, p)


def test_replay_without_patience_none_and_unknown_start():
    assert replay([0.2, 0.5, 0.4], None, "val_accuracy", 0.1) == (2, 3, False)
    assert replay([None, 0.3, 0.2], 5, "val_accuracy", None) == (2, 3, False)  # NaN: no z*
    assert replay([0.05, 0.05], 1, "val_accuracy", None) == (1, 1, True)  # unknown z0
    assert replay([2.0, 1.5, 1.7, 1.6], 2, "val_loss", 2.3) == (2, 3, True)


def test_runs_p_minus_one_epochs_after_the_best():
    # Best at epoch 3, p = 4: the slide sets T = 2 + 4 = 6 and stops after epoch 6.
    assert engine_loop(0.0, [0.1, 0.2, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2], 4) == (6, 3)


def test_ties_keep_the_older_model():
    es = EarlyStopping(None, "val_accuracy", 0.1)
    assert es.update(1, 0.5)
    assert not es.update(2, 0.5)
    assert es.best_epoch == 1


def test_val_loss_lower_is_better_and_nan_never_wins():
    es = EarlyStopping(2, "val_loss", 2.3)
    assert es.update(1, 1.0)
    assert not es.update(2, float("nan"))
    assert not es.update(3, 1.5)
    assert es.best_epoch == 1
    assert es.should_stop(2)
