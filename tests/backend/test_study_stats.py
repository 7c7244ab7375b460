"""Seed statistics of studies: the pure figures against scipy and against a hand computation,
and GET /api/studies/{id}/stats on real studies trained by a real worker."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient
from scipy import stats as sps

from backend.app import create_app
from backend.studies.stats import compare, describe, seeds_needed, t_power
from tests.conftest import wait_for

A = [0.91, 0.93, 0.90, 0.94, 0.92]
B = [0.89, 0.92, 0.88, 0.91, 0.90]


def test_describe_by_hand() -> None:
    # mean 0.92; deviations -.01 .01 -.02 .02 0 → Σd² = 0.001, s² = 0.001/4, s = 0.0158114
    # t(0.975, 4) = 2.776445; half-width = 2.776445 · 0.0158114 / √5 = 0.0196324
    got = describe(A)
    assert got["n"] == 5
    assert got["mean"] == pytest.approx(0.92)
    assert got["std"] == pytest.approx(0.0158113883, rel=1e-8)
    assert got["ci95"] == pytest.approx([0.92 - 0.0196324, 0.92 + 0.0196324], abs=1e-6)
    assert describe([0.5]) == {"n": 1, "mean": 0.5, "std": None, "ci95": None}
    assert describe([])["n"] == 0


def test_describe_against_scipy() -> None:
    got = describe(A)
    lo, hi = sps.t.interval(0.95, 4, loc=sps.tmean(A), scale=sps.sem(A))
    assert got["ci95"] == pytest.approx([lo, hi], rel=1e-12)
    assert got["std"] == pytest.approx(sps.tstd(A), rel=1e-12)


def test_paired_by_hand_and_against_scipy() -> None:
    a = dict(zip(range(5), A))
    b = dict(zip(range(5), B))
    got = compare(a, b, higher_is_better=True, metric="test_accuracy")
    assert got["paired"] and got["test"] == "paired t"
    # per-seed differences .02 .01 .02 .03 .02: mean .02, s_d = √(0.0002/4) = 0.00707107
    # t = .02 / (0.00707107/√5) = 6.324555; interval .02 ± 2.776445 · 0.00316228
    assert got["diff"] == pytest.approx(0.02)
    assert got["ci95"] == pytest.approx([0.02 - 0.00877981, 0.02 + 0.00877981], abs=1e-7)
    ref = sps.ttest_rel(A, B)
    assert ref.statistic == pytest.approx(6.3245553, rel=1e-6)
    assert got["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert got["p_value"] == pytest.approx(2 * sps.t.sf(6.3245553, 4), rel=1e-6)
    assert got["verdict"] == "a better" and got["says"].startswith("a better")
    # the same figures as a loss: lower is better, so b wins
    assert compare(a, b, higher_is_better=False)["verdict"] == "b better"
    assert compare(b, a, higher_is_better=True)["verdict"] == "b better"


def test_welch_by_hand_and_against_scipy() -> None:
    a = dict(zip(range(5), A))
    b = dict(zip(range(10, 15), B))  # other seeds: nothing to pair
    got = compare(a, b, higher_is_better=True)
    assert not got["paired"] and got["test"] == "welch t"
    va, vb = sps.tvar(A) / 5, sps.tvar(B) / 5
    t = (0.92 - 0.90) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 4)  # Welch–Satterthwaite
    p = 2 * sps.t.sf(abs(t), df)
    half = sps.t.ppf(0.975, df) * math.sqrt(va + vb)
    ref = sps.ttest_ind(A, B, equal_var=False)
    assert got["p_value"] == pytest.approx(p, rel=1e-9)
    assert got["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert got["ci95"] == pytest.approx([0.02 - half, 0.02 + half], rel=1e-9)
    # unpaired, these five seeds do not settle it (p ≈ 0.07): the sentence says how many would
    assert got["verdict"] == "not distinguishable"
    need = seeds_needed(math.sqrt((sps.tvar(A) + sps.tvar(B)) / 2), 0.02, paired=False)
    sd = math.sqrt((sps.tvar(A) + sps.tvar(B)) / 2)
    assert t_power(need, sd, 0.02, paired=False) >= 0.8 > t_power(need - 1, sd, 0.02, paired=False)
    # never below the normal approximation, and only a seed or two above it at this size
    approx = 2 * ((1.959964 + 0.841621) * sd / 0.02) ** 2
    assert approx <= need <= approx + 2
    assert f"about {need} seeds would be needed to see a difference of 0.02" in got["says"]
    assert "with 5 seeds" in got["says"]


@pytest.mark.parametrize(("effect", "paired", "n"), [
    # Cohen (1988) and G*Power's tables: two-sided, α = 5 %, power 80 %, effect d/sd.
    (0.5, False, 64), (0.8, False, 26), (1.0, False, 17), (0.5, True, 34), (0.2, True, 199),
])
def test_seeds_needed_is_the_textbook_sample_size(effect: float, paired: bool, n: int) -> None:
    assert seeds_needed(0.01, 0.01 * effect, paired) == n
    assert seeds_needed(0.01, -0.01 * effect, paired) == n  # the sign does not matter


def test_t_power_by_hand() -> None:
    """Power at n from the noncentral t written out: P(T > c) + P(T < −c), by integrating the
    noncentral t's density numerically (independent of scipy's nct.sf)."""
    from scipy import integrate

    n, sd, d = 6, 0.02, 0.03
    df, ncp = 2 * n - 2, d / (sd * math.sqrt(2 / n))
    c = sps.t.ppf(0.975, df)
    density = lambda x: sps.nct.pdf(x, df, ncp)
    by_hand = integrate.quad(density, c, math.inf)[0] + integrate.quad(density, -math.inf, -c)[0]
    assert t_power(n, sd, d, paired=False) == pytest.approx(by_hand, rel=1e-6)
    # paired: df = n − 1, noncentrality d / (s_d / √n)
    df, ncp = n - 1, d / (sd / math.sqrt(n))
    c = sps.t.ppf(0.975, df)
    by_hand = sps.nct.sf(c, df, ncp) + sps.nct.cdf(-c, df, ncp)
    assert t_power(n, sd, d, paired=True) == pytest.approx(by_hand, rel=1e-12)


def test_degenerate_cases() -> None:
    same = {1: 0.5, 2: 0.6, 3: 0.7}
    got = compare(same, dict(same), higher_is_better=True)
    assert got["paired"] and got["p_value"] == 1.0 and got["verdict"] == "not distinguishable"
    assert "no difference" in got["says"]
    shifted = compare({1: 0.6, 2: 0.7}, {1: 0.5, 2: 0.6}, higher_is_better=True)
    assert shifted["p_value"] == 0.0 and shifted["verdict"] == "a better"
    few = compare({1: 0.5}, {1: 0.9}, higher_is_better=True)
    assert few["verdict"] == "not distinguishable" and few["p_value"] is None
    assert "at least 2" in few["says"]


def _finished_study(client: TestClient, body: dict) -> dict:
    study = client.post("/api/studies", json=body)
    assert study.status_code == 201, study.text
    sid = study.json()["id"]
    wait_for(lambda: client.get(f"/api/studies/{sid}").json()["status"] == "finished",
             timeout=300, what="the study to finish", every=0.2)
    return client.get(f"/api/studies/{sid}").json()


BASE = {"data": {"dataset": "digits"}, "model": {"hidden": [16]},
        "training": {"max_epochs": 3}}


def test_stats_of_real_studies(configure, start_worker) -> None:
    start_worker(configure())
    with TestClient(create_app()) as client:
        wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker to register")
        clear = _finished_study(client, {"base": BASE, "grid": {"optim.lr": [0.1, 1e-5]},
                                         "seeds": 5})
        got = client.get(f"/api/studies/{clear['id']}/stats").json()
        assert got["metric"] == "test_accuracy"
        assert [g["point"] for g in got["groups"]] == [{"optim.lr": 0.1}, {"optim.lr": 1e-5}]
        assert [g["n"] for g in got["groups"]] == [5, 5]
        assert all(g["pending"] == 0 for g in got["groups"])
        by_run = {r["spec"]["optim"]["lr"]: [] for r in clear["runs"]}
        for r in clear["runs"]:
            by_run[r["spec"]["optim"]["lr"]].append(r["result"]["test_accuracy"])
        assert sorted(got["groups"][0]["values"]) == sorted(by_run[0.1])
        (c,) = got["comparisons"]
        assert (c["a"], c["b"], c["paired"], c["verdict"]) == (0, 1, True, "a better")
        assert c["p_value"] < 0.05 and c["ci95"][0] > 0
        loss = client.get(f"/api/studies/{clear['id']}/stats",
                          params={"metric": "test_loss"}).json()
        assert loss["comparisons"][0]["verdict"] == "a better"  # lower loss is better
        bad = client.get(f"/api/studies/{clear['id']}/stats", params={"metric": "nope"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "metric"
        assert client.get("/api/studies/999999/stats").status_code == 404

        # Two points that differ only in their name train identically, seed by seed (alone:
        # packs of different sizes could differ by float round-off, README "pack").
        same = _finished_study(client, {"base": BASE, "grid": {"name": ["a", "b"]},
                                        "seeds": 5, "pack": False})
        got = client.get(f"/api/studies/{same['id']}/stats").json()
        (c,) = got["comparisons"]
        assert c["paired"] and c["verdict"] == "not distinguishable", c


def test_unfinished_runs_are_left_out_and_counted(configure) -> None:
    configure()  # no worker: every run stays queued
    with TestClient(create_app()) as client:
        study = client.post("/api/studies", json={"base": BASE, "grid": {"optim.lr": [0.1, 0.2]},
                                                  "seeds": 3}).json()
        got = client.get(f"/api/studies/{study['id']}/stats").json()
        assert [(g["n"], g["pending"], g["values"]) for g in got["groups"]] == [(0, 3, [])] * 2
        assert got["comparisons"][0]["verdict"] == "not distinguishable"
        assert got["comparisons"][0]["p_value"] is None
