"""Standard posteriors as hand-written protocol models (QVR has no plates yet, so a
vector of per-school effects cannot be written as a program): eight schools, centred
and non-centred (Rubin 1981; the posterior means mu ~ 4.4, tau ~ 3.6 are Stan's)."""

from __future__ import annotations

from inference_models import EightSchools, eight_schools_data

from quivers.inference import MCMC, NUTSKernel


def test_eight_schools_non_centred_is_clean_and_the_centred_form_diverges():
    """4 vectorised chains, 150 warmup + 200 draws each (fixed seed). Non-centred:
    mu and tau within 0.5 of the reference means (their Monte Carlo error here is
    about 0.2); centred: the funnel between tau and theta shows as divergences, more
    than three times the non-centred form's."""
    x, obs = eight_schools_data()
    runs = {
        centred: MCMC(NUTSKernel(), num_warmup=150, num_samples=200, num_chains=4, seed=1).run(
            EightSchools(centred=centred), x, obs
        )
        for centred in (False, True)
    }
    clean, funnel = runs[False], runs[True]
    assert abs(float(clean.samples["mu"].mean()) - 4.4) < 0.5
    assert abs(float(clean.samples["tau"].mean()) - 3.6) < 0.5
    assert int(funnel.divergence_counts.sum()) >= 3
    assert int(funnel.divergence_counts.sum()) > 3 * int(clean.divergence_counts.sum())
