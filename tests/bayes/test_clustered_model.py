"""The clustered beta-binomial: design effects, the default on clustered events, honest intervals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bayesactiv as ba
from bayesactiv.bayes.fitting import ClusteredEventsWarning, default_model
from bayesactiv.bayes.sufficient import design_effects

FAST = {"draws": 400, "tune": 400, "chains": 2}


def simulate(seed: int, units: int = 120, inputs: int = 100, tokens: int = 16,
             phi: float | None = 1.0):
    """Each input gives unit u a propensity p_ui ~ Beta(theta_u phi, (1 - theta_u) phi); tokens
    fire independently given it (phi=None: p_ui = theta_u, independent tokens)."""
    rng = np.random.default_rng(seed)
    theta = rng.beta(0.5, 2.0, units)
    if phi is None:
        p = np.broadcast_to(theta, (inputs, units))
    else:
        p = rng.beta(np.maximum(theta * phi, 1e-12), np.maximum((1 - theta) * phi, 1e-12),
                     (inputs, units))
    c = rng.binomial(tokens, p)
    return ba.data.from_input_counts(c, np.full(inputs, tokens), network="lm", layer="mlp"), theta


def quiet_fit(ds, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ba.ConvergenceWarning)
        warnings.simplefilter("ignore", ClusteredEventsWarning)
        return ba.fit(ds, *args, seed=1, **FAST, **kwargs)


def covers(units, theta) -> float:
    return float(((units["low"] <= theta) & (theta <= units["high"])).mean())


@pytest.fixture(scope="module")
def clustered():
    return simulate(0)


def test_design_effect_matches_the_beta_binomial_over_inputs(clustered):
    ds, _ = clustered
    d = design_effects(ds, np.zeros(ds.sizes["unit"], dtype=int))
    # p_ui ~ Beta(theta phi, (1 - theta) phi), t tokens: d = 1 + (t - 1) / (phi + 1) = 8.5
    assert 7.0 < np.median(d) < 10.0
    indep, _ = simulate(0, phi=None)
    d0 = design_effects(indep, np.zeros(indep.sizes["unit"], dtype=int))
    assert np.median(d0) < 1.3 and (d0 >= 1).all()


def test_fit_uses_the_clustered_model_and_its_intervals_cover(clustered):
    ds, theta = clustered
    assert default_model(ds) == "clustered_beta_binomial"
    f = quiet_fit(ds)
    assert f.model == "clustered_beta_binomial"
    units = f.units(0.9)
    assert "design_effect" in units and (units["design_effect"] >= 1).all()
    honest = covers(units, theta)
    with pytest.warns(ClusteredEventsWarning, match="too narrow"):
        naive_fit = ba.fit(ds, "beta_binomial", seed=1, **FAST)
    naive = covers(naive_fit.units(0.9), theta)
    assert 0.8 <= honest <= 0.99 and naive < 0.65, (honest, naive)
    width = (units["high"] - units["low"]).median() / (
        naive_fit.units(0.9)["high"] - naive_fit.units(0.9)["low"]).median()
    assert width > 2.0  # about sqrt(8.5)


def test_dense_events_give_the_beta_binomial_exactly():
    ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
    a = quiet_fit(ds, "clustered_beta_binomial")
    b = quiet_fit(ds, "beta_binomial")
    for name in ("mean", "low", "high", "p_dead"):
        np.testing.assert_array_equal(a.units()[name].values, b.units()[name].values)
    np.testing.assert_array_equal(a.group_draws()["mfr"].values, b.group_draws()["mfr"].values)


def test_model_implied_fano_agrees_with_the_plug_in(clustered):
    """mean_u (1 - theta_u) d_u against the plug-in Fano factor of per-input counts, and the
    sign of a difference between a strongly and a weakly clustered layer."""
    strong, _ = clustered
    weak, _ = simulate(1, phi=10.0)
    both = ba.combine([strong, weak.assign_coords(
        network=("unit", ["lm2"] * weak.sizes["unit"]),
        unit=("unit", [u.replace("lm/", "lm2/") for u in weak["unit"].values]))])
    f = quiet_fit(both)
    mf = f.groups()["mf_mean"].values
    c = both["count"].values.astype(float)
    p = c / both["n"].values
    plug = (both["cluster_count_sq"] - 2 * p * both["cluster_count_n"]
            + p * p * both["cluster_n_sq"]).values / np.where(c > 0, c, np.nan)
    plug_mf = [np.nanmean(plug[both["network"].values == net]) for net in ("lm", "lm2")]
    assert np.sign(mf[0] - mf[1]) == np.sign(plug_mf[0] - plug_mf[1]) == 1
    assert mf[0] == pytest.approx(plug_mf[0], rel=0.35)


def test_full_method_agrees_with_marginal(clustered):
    ds, _ = clustered
    small = ds.isel(unit=slice(0, 30))
    m = quiet_fit(small).units()
    f = quiet_fit(small, method="full").units()
    assert float(np.abs(m["mean"] - f["mean"]).max()) < 0.02


def test_fractional_tail_terms_equal_the_beta_marginal(clustered):
    """The tail-sum form with fractional offsets is the lgamma form of the effective counts."""
    from scipy import special

    from bayesactiv.bayes.likelihood import beta_terms
    from bayesactiv.bayes.sufficient import make_groups, unit_stats

    ds, _ = clustered
    groups = make_groups(ds, ("network", "layer"), False)
    st = unit_stats(ds, "clustered_beta_binomial", groups)
    assert st.x.dtype.kind == "f" and np.all(st.x * 32 == np.rint(st.x * 32))
    t = beta_terms(st, 1)
    for a, b in [(0.3, 2.0), (4.0, 11.0), (0.01, 0.05)]:
        slots = np.array([a, b, a + b])
        tail = (np.sum(t.log_w * np.log(slots[t.log_slot] + t.log_k))
                + np.sum(t.lg_w * special.gammaln(slots[t.lg_slot] + t.lg_k)))
        direct = np.sum(st.pair_weight * (special.betaln(a + st.pair_x, b + st.pair_m - st.pair_x)
                                          - special.betaln(a, b)))
        assert tail == pytest.approx(direct, rel=1e-10, abs=1e-8)


def test_layer_mfr_is_widened_when_inputs_move_units_together():
    """Units that share a per-input effect: the layer design effect R (streamed layer sums)
    is well above 1 and widens the layer's MFR interval by about sqrt(R); independent
    units keep R near 1."""
    from bayesactiv.bayes.sufficient import layer_design_effects

    rng = np.random.default_rng(5)
    theta = rng.uniform(0.1, 0.4, 80)
    shift = rng.normal(0, 1.0, 120)  # one input moves every unit the same way
    logit = np.log(theta / (1 - theta))[None, :] + shift[:, None]
    c = rng.binomial(8, 1 / (1 + np.exp(-logit)))
    shared = ba.data.from_input_counts(c, np.full(120, 8), network="lm", layer="mlp")
    r = layer_design_effects(shared, np.zeros(80, dtype=int))[0]
    indep, _ = simulate(2, units=80, inputs=120, tokens=8, phi=3.0)
    r0 = layer_design_effects(indep, np.zeros(80, dtype=int))[0]
    assert r > 20 and r0 < 2, (r, r0)
    # the widening: the layer's MFR interval against the spread of the plug-in MFR over a
    # bootstrap of inputs
    g = quiet_fit(shared).groups(0.9)
    width = float(g["mfr_high"][0] - g["mfr_low"][0])
    boot = []
    for _ in range(300):
        w = rng.multinomial(120, np.full(120, 1 / 120))
        boot.append(((w @ c) / (8 * 120)).mean())
    boot_width = np.subtract(*np.quantile(boot, [0.95, 0.05]))
    assert 0.7 < width / boot_width < 1.4, (width, boot_width)
    # a subset of the layer's units is not the layer: no widening
    assert layer_design_effects(shared.isel(unit=slice(0, 40)), np.zeros(40, dtype=int))[0] == 1
