"""rliable aggregates on small score matrices, checked against values worked out by hand."""

import json
import sys

import numpy as np
import pytest

pytest.importorskip("rliable")

from jaxbc.stats import (  # noqa: E402
    aggregate_scores,
    markdown_table,
    performance_profiles,
    plot_performance_profiles,
    stratified_bootstrap,
)


def test_point_estimates_by_hand():
    # 2 runs x 4 tasks; sorted: 1..8. IQM drops the lowest and highest 2 -> mean(3, 4, 5, 6)
    a = [[1, 2, 3, 4], [5, 6, 7, 8]]
    # optimality gap (gamma 1): min(s, 1) = 0.5, 1, 0.2, 1 -> mean 0.675 -> gap 0.325
    b = [[0.5, 1.5], [0.2, 1.0]]
    res = aggregate_scores({"a": a}, reps=10)["metrics"]["a"]
    assert res["iqm"]["point"] == pytest.approx(4.5)
    assert res["mean"]["point"] == pytest.approx(4.5)
    assert res["median"]["point"] == pytest.approx(4.5)  # task means 3, 4, 5, 6
    gap = aggregate_scores({"b": b}, metrics=["optimality_gap", "median"], reps=10)["metrics"]["b"]
    assert gap["optimality_gap"]["point"] == pytest.approx(0.325)
    assert gap["median"]["point"] == pytest.approx((0.35 + 1.25) / 2)
    assert set(gap) == {"optimality_gap", "median"}


def test_probability_of_improvement_by_hand():
    # task 0: X (1, 3) vs Y (2, 2): 2 of 4 pairs X > Y -> 0.5
    # task 1: X (2, 3) vs Y (2, 1): (2,2) tie 0.5, the other 3 pairs X > Y -> 3.5 / 4 = 0.875
    x = [[1, 2], [3, 3]]
    y = [[2, 2], [2, 1]]
    res = aggregate_scores({"X": x, "Y": y}, reps=500)
    poi = res["probability_of_improvement"]
    assert list(poi) == ["X > Y"]
    assert poi["X > Y"]["point"] == pytest.approx((0.5 + 0.875) / 2)
    lo, hi = poi["X > Y"]["ci"]
    assert 0 <= lo <= poi["X > Y"]["point"] <= hi <= 1
    both = aggregate_scores({"X": x, "Y": y}, comparisons=[("Y", "X"), ("X", "Y")], reps=10)[
        "probability_of_improvement"
    ]
    assert both["Y > X"]["point"] == pytest.approx(1 - both["X > Y"]["point"])
    # identical methods: the point estimate is 0.5 exactly
    assert (
        aggregate_scores({"X": x, "Z": x}, reps=10)["probability_of_improvement"]["X > Z"]["point"]
        == 0.5
    )


def test_intervals_are_stratified_percentile_bootstrap():
    # runs constant within each task: every stratified replicate is the data -> zero-width CIs
    s = np.array([[0.2, 0.9, 0.5]] * 4)
    res = aggregate_scores({"m": s}, reps=200)["metrics"]["m"]
    for name, r in res.items():
        assert r["ci"] == pytest.approx([r["point"], r["point"]]), name
    # resampling keeps tasks: a replicate's column holds values of that column only
    rng = np.random.default_rng(0)
    data = np.array([[0.0, 10.0], [1.0, 11.0], [2.0, 12.0]])
    boot = stratified_bootstrap(data, 50, rng)
    assert boot.shape == (50, 3, 2)
    assert set(np.unique(boot[..., 0])) <= {0.0, 1.0, 2.0} and set(np.unique(boot[..., 1])) <= {
        10.0,
        11.0,
        12.0,
    }
    # reproducible with a seed; intervals contain the point and narrow with more runs
    rng = np.random.default_rng(1)
    few, many = rng.normal(0.5, 0.2, (4, 3)), rng.normal(0.5, 0.2, (64, 3))
    r1, r2 = aggregate_scores({"m": few}, seed=3), aggregate_scores({"m": few}, seed=3)
    assert r1 == r2
    json.dumps(r1)  # JSON-able
    for name, r in r1["metrics"]["m"].items():
        assert r["ci"][0] <= r["point"] <= r["ci"][1], name
    wide = np.diff(r1["metrics"]["m"]["mean"]["ci"])[0]
    narrow = np.diff(aggregate_scores({"m": many})["metrics"]["m"]["mean"]["ci"])[0]
    assert narrow < wide


def test_matches_rliable_library_when_it_imports():
    """Our numpy bootstrap against rliable.library's (arch), where that imports."""
    try:
        from rliable import library, metrics
    except Exception as e:  # arch < 8 does not import with pandas 3
        pytest.skip(f"rliable.library does not import here: {e}")
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 1, (10, 5))
    ours = aggregate_scores({"m": s}, metrics=["iqm"], reps=5000)["metrics"]["m"]["iqm"]
    point, ci = library.get_interval_estimates(
        {"m": s}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=5000
    )
    assert ours["point"] == pytest.approx(point["m"][0])
    assert ours["ci"] == pytest.approx(ci["m"][:, 0], abs=0.02)


def test_input_errors():
    with pytest.raises(ValueError, match="same number of tasks"):
        aggregate_scores({"a": [[1, 2]], "b": [[1, 2, 3]]})
    with pytest.raises(ValueError, match="unknown metric"):
        aggregate_scores({"a": [[1.0]]}, metrics=["max"])
    with pytest.raises(ValueError, match="NaN"):
        aggregate_scores({"a": [[np.nan]]})
    with pytest.raises(ValueError, match="not in score_dict"):
        aggregate_scores({"a": [[1.0]]}, comparisons=[("a", "b")])


def test_performance_profile_by_hand_and_plot(tmp_path):
    s = {"A": [[0.1, 0.6], [0.4, 0.9]], "B": [1.0, 1.0, 1.0]}  # B: one task, three runs
    taus, prof, cis = performance_profiles(s, taus=[0.0, 0.5, 0.95, 1.0], reps=100)
    np.testing.assert_allclose(prof["A"], [1.0, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(prof["B"], [1.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(cis["B"], [prof["B"], prof["B"]])  # no spread, no band
    assert (
        cis["A"].shape == (2, 4)
        and (cis["A"][0] <= prof["A"]).all()
        and (prof["A"] <= cis["A"][1]).all()
    )
    path = tmp_path / "profiles.png"
    ax = plot_performance_profiles(s, path, reps=50, title="toy")
    assert path.stat().st_size > 1000 and ax.get_title() == "toy"
    import matplotlib.pyplot as plt

    plt.close(ax.figure)


def test_missing_rliable_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "rliable", None)
    with pytest.raises(ImportError, match=r'pip install "jaxbc\[stats\]"'):
        aggregate_scores({"a": [[1.0]]})


def test_markdown_table_lists_every_method_metric_and_comparison():
    scores = {"A": [[0.2, 0.4], [0.3, 0.5]], "B": [[0.6, 0.8], [0.7, 0.9]]}
    res = aggregate_scores(scores, metrics=("iqm", "optimality_gap"), reps=200)
    table = markdown_table(res, digits=3).splitlines()
    assert table[0] == "| method | IQM | optimality gap |"
    a = res["metrics"]["A"]["iqm"]
    assert table[2].startswith(f"| A | {a['point']:.3f} [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]")
    assert table[-1].startswith("| A > B | 0.000 [")


def test_paired_difference_resamples_pairs():
    """Seeds resampled as pairs: a constant shift on top of large seed-to-seed spread has a
    narrow CI (an unpaired bootstrap would be as wide as the spread)."""
    from jaxbc.stats import paired_difference

    rng = np.random.default_rng(1)
    base = rng.uniform(0.0, 10.0, size=8)
    shift = 0.5 + rng.normal(0.0, 0.05, size=8)
    mean, lo, hi = paired_difference(base + shift, base, resamples=4000)
    assert mean == pytest.approx(shift.mean())
    assert lo < mean < hi and hi - lo < 0.2 and lo > 0.4
    assert paired_difference([1.0, 2.0], [0.5, 1.5]) == (0.5, 0.5, 0.5)  # every pair equal
    m, lo, hi = paired_difference([1.0], [0.0])
    assert m == 1.0 and np.isnan(lo) and np.isnan(hi)
    with pytest.raises(ValueError, match="paired"):
        paired_difference([1.0, 2.0], [1.0])
