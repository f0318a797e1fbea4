"""The negative binomial's marginal at large phi (the Poisson limit) has no cancellation error."""

import numpy as np

import bayesactiv as ba
from bayesactiv.bayes import likelihood, sufficient
from bayesactiv.bayes.native import native_logp
from bayesactiv.bayes.sampling import native_model


def _windows():
    rng = np.random.default_rng(0)
    wc = rng.binomial(20, rng.beta(1, 3, 64)[None, :], size=(18, 64))  # under-dispersed
    return ba.make_dataset(wc.sum(0), 360, network="n", layer="l", window_count=wc,
                           window_size=20)


def test_pointwise_nb_tends_to_gamma_poisson_as_phi_grows():
    ds = _windows()
    groups = sufficient.make_groups(ds, ("layer",), False)
    nb = sufficient.unit_stats(ds, "negative_binomial", groups)
    gp = sufficient.unit_stats(ds, "gamma_poisson", groups)
    al, be = np.full((1, 1), 0.6), np.full((1, 1), 0.9)
    want = likelihood.pointwise_log_lik("gamma_poisson", gp, groups.index,
                                        {"alpha": al, "beta": be}).sum()
    got = [likelihood.pointwise_log_lik("negative_binomial", nb, groups.index,
                                        {"alpha": al, "beta": be,
                                         "phi": np.full((1, 1), np.exp(lp))}).sum()
           for lp in (20.0, 26.0, 32.0, 38.0)]
    np.testing.assert_allclose(got, want, rtol=1e-5)  # the quadrature's own error only
    assert np.all(np.diff(got) > -1e-6)  # and it does not fall as phi grows


def test_native_nb_log_density_is_smooth_in_log_phi():
    ds = _windows()
    groups = sufficient.make_groups(ds, ("layer",), False)
    st = sufficient.unit_stats(ds, "negative_binomial", groups)
    m = native_model("nb", "marginal", st, groups, False, (np.log(0.1), 2.5))
    values, grads = [], []
    for lp in np.arange(10.0, 40.0, 2.0):
        x, g = np.array([-0.5, -0.5, lp]), np.zeros(3)
        values.append(native_logp(m.buffer, x, g))
        grads.append(g[2])
    # at large phi the likelihood is flat: the log density follows the Normal(log 10, 2.5) prior
    prior_grad = -(np.arange(10.0, 40.0, 2.0) - np.log(10.0)) / 2.5**2
    np.testing.assert_allclose(grads[5:], prior_grad[5:], atol=1e-3)
    assert np.all(np.diff(values) < 0)
