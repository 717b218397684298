"""The "Try it" snippets of the gallery pages run as a user pastes them, and say true things.

For each page with a ``## Try it`` section, every ```python block of the page runs, in
order, in one fresh Python process started from the repository root (one shared
namespace, as when the blocks are pasted into one session one after another). Then the
printed claims are checked against what the page says:

- ``initial loss: A`` and ``final loss: B``: the loss falls (B < A);
- ``acceptance: a`` and ``divergences: d``: printed, a in (MIN_ACCEPTANCE, 1] (or the
  page's own lower bound: a language model's 8-draw demonstration barely adapts its
  step size), d at most the page's stated number (0 unless ``CLAIMS`` says otherwise);
- ``NAME: posterior mean = V (true T)`` (NUTS) and ``NAME: guide median = V (true T)``
  (SVI): |V - T| within the page's tolerance for that kind of line, which the page
  states in its text as "within TOL". ``(reference T)`` instead of ``(true T)`` compares
  with a published posterior mean, for a page fitting real data.

Every page's snippets fix their seeds, so the printed numbers are the same on every run
of one machine; the tolerances leave room for the round-off of other machines. Pages
whose snippets take more than a few seconds are ``slow`` (CI runs them in its slow step).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
MIN_ACCEPTANCE = 0.5

_PYTHON = re.compile(r"^```python\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_NUMBER = r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)"
_CLAIM = re.compile(
    rf"^(?P<name>[\w\[\], ]+): (?P<kind>posterior mean|guide median) = {_NUMBER} "
    rf"\((?:true|reference) {_NUMBER}\)$"
)

# Run in the subprocess: the page's blocks in order, in one namespace, each compiled
# under a name that says which block a traceback is in.
_DRIVER = """
import json, sys
page, blocks = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
for number, code in enumerate(blocks, 1):
    exec(compile(code, f"{page} [python block {number}]", "exec"), namespace)
"""


@dataclass(frozen=True)
class Claims:
    """What a page's snippets claim, with the tolerances its text states."""

    posterior_mean: float | None = None  # |mean - true| for NUTS lines
    guide_median: float | None = None  # |median - true| for SVI lines
    max_divergences: int = 0
    min_acceptance: float = MIN_ACCEPTANCE
    slow: bool = False
    # a grammar page (deduction blocks, their own issue): its snippets must run, and
    # print no loss, acceptance or posterior lines to check
    runs_only: bool = False
    # names whose lines are allowed a different tolerance (e.g. a scale that is
    # weakly identified by the page's small data set), by kind then name
    per_name: dict[str, dict[str, float]] = field(default_factory=dict)

    def tolerance(self, kind: str, name: str) -> float | None:
        special = self.per_name.get(kind, {})
        if name in special:
            return special[name]
        return self.posterior_mean if kind == "posterior mean" else self.guide_median


def fitted(tol: float, **wider: float) -> Claims:
    """A page whose NUTS means and SVI medians are both within ``tol`` of the truth,
    except the names given, within their own (wider) tolerance; a slow page."""
    per_name = {kind: dict(wider) for kind in ("posterior mean", "guide median")}
    return Claims(posterior_mean=tol, guide_median=tol, per_name=per_name, slow=True)


CLAIMS: dict[str, Claims] = {
    "logistic_regression": fitted(0.35),
    "poisson_regression": fitted(0.15),
    "gamma_regression": fitted(0.15, k=1.5),
    "robust_regression": fitted(0.25),
    "hierarchical_regression": fitted(0.3, sigma_a=0.45),
    "changepoint": fitted(0.8, s=2.5),
    "ar2": fitted(0.2, phi2=0.3),
    "negbin_regression": fitted(0.2, r=1.0),
    "ppca": fitted(0.4),
    "markov_chain": fitted(0.1),
    "mixture_model": fitted(0.2),
    "zero_inflated_poisson": fitted(0.15),
    "eight_schools": fitted(1.5),
    "ar1": fitted(0.2),
    "grouped_beta_regression": fitted(0.25, phi=6.0),
    # language models: the weights are not identified, so no value is compared
    "gru_lm": Claims(min_acceptance=0.05, slow=True),
    "vanilla_rnn_lm": Claims(slow=True),  # the reference page (qvr-spec section 7)
    # grammars
    "ccg": Claims(runs_only=True),
    "mcfg": Claims(runs_only=True),
    "pcfg": Claims(runs_only=True, slow=True),
    "type_logical": Claims(runs_only=True, slow=True),
}


def _pages_with_try_it() -> list[str]:
    return sorted(
        p.stem
        for p in EXAMPLES.glob("*.md")
        if p.name != "README.md" and "\n## Try it\n" in p.read_text("utf-8")
    )


def python_blocks(page: Path) -> list[str]:
    return _PYTHON.findall(page.read_text("utf-8"))


def run_page(page: Path) -> str:
    """Run the page's python blocks in one fresh interpreter at the repository root."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "server"), *filter(None, [env.get("PYTHONPATH")])]
    )
    env.pop("PYTHONSTARTUP", None)
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER],
        input=json.dumps([page.name, python_blocks(page)]),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{page.name}: a snippet failed\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _value(out: str, label: str) -> float:
    found = re.findall(rf"^{label}:\s+{_NUMBER}\s*$", out, re.MULTILINE)
    assert len(found) == 1, f"expected one '{label}:' line, found {len(found)}:\n{out}"
    return float(found[0])


def check_claims(name: str, out: str, claims: Claims) -> None:
    """Every printed claim of the page's snippets holds."""
    if claims.runs_only:
        return
    assert _value(out, "final loss") < _value(out, "initial loss"), out
    acceptance = _value(out, "acceptance")
    assert claims.min_acceptance < acceptance <= 1.0, out
    divergences = _value(out, "divergences")
    assert divergences == int(divergences) and divergences <= claims.max_divergences, out
    checked = {"posterior mean": 0, "guide median": 0}
    for line in out.splitlines():
        match = _CLAIM.match(line.strip())
        if match is None:
            continue
        site, kind = match["name"], match["kind"]
        got, true = float(match[3]), float(match[4])
        tol = claims.tolerance(kind, site)
        assert tol is not None, f"{name}: a '{kind}' line with no stated tolerance: {line}"
        assert abs(got - true) <= tol, f"{name}: {line!r} is not within {tol}\n{out}"
        checked[kind] += 1
    if claims.posterior_mean is not None:
        assert checked["posterior mean"], f"{name}: no 'posterior mean = ... (true ...)' line"
    if claims.guide_median is not None:
        assert checked["guide median"], f"{name}: no 'guide median = ... (true ...)' line"


def test_every_try_it_page_states_its_claims() -> None:
    pages = _pages_with_try_it()
    assert set(pages) == set(CLAIMS), sorted(set(pages) ^ set(CLAIMS))
    for name, claims in CLAIMS.items():
        text = " ".join((EXAMPLES / f"{name}.md").read_text("utf-8").split())
        stated = {claims.posterior_mean, claims.guide_median} - {None}
        for kind in claims.per_name.values():
            stated |= set(kind.values())
        for tol in stated:
            assert f"within {tol:g}" in text, f"{name}.md does not state 'within {tol:g}'"
        blocks = python_blocks(EXAMPLES / f"{name}.md")
        assert claims.runs_only or len(blocks) >= 3, (
            f"{name}.md: data generation, SVI and NUTS blocks expected"
        )


def _param(name: str) -> object:
    marks = [pytest.mark.slow] if CLAIMS[name].slow else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_param(n) for n in sorted(CLAIMS)])
def test_page_snippets_run_and_their_claims_hold(name: str) -> None:
    out = run_page(EXAMPLES / f"{name}.md")
    check_claims(name, out, CLAIMS[name])


_GOOD = """\
initial loss: 120.50
final loss:   80.25
a: guide median = 1.020 (true 1.000)
acceptance:  0.91
divergences: 0
a: posterior mean = 0.980 (true 1.000)
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("final loss:   80.25", "final loss:   130.00"), "final loss"),
        (("acceptance:  0.91", "acceptance:  0.20"), "acceptance"),
        (("divergences: 0", "divergences: 3"), "divergences"),
        (("mean = 0.980", "mean = 1.300"), "not within 0.1"),
        (("a: guide median", "b: guide median"), None),  # still within: names do not matter
        (("acceptance:  0.91\n", ""), "acceptance"),
    ],
)
def test_the_claim_checker_fails_on_a_false_claim(
    change: tuple[str, str], message: str | None
) -> None:
    claims = Claims(posterior_mean=0.1, guide_median=0.1)
    check_claims("page", _GOOD, claims)
    out = _GOOD.replace(*change)
    if message is None:
        check_claims("page", out, claims)
        return
    with pytest.raises(AssertionError, match=message):
        check_claims("page", out, claims)


def test_the_claim_checker_needs_a_stated_tolerance_and_a_claim_line() -> None:
    with pytest.raises(AssertionError, match="no stated tolerance"):
        check_claims("page", _GOOD, Claims(guide_median=0.1))
    no_posterior = _GOOD.replace("a: posterior mean = 0.980 (true 1.000)\n", "")
    with pytest.raises(AssertionError, match="no 'posterior mean"):
        check_claims("page", no_posterior, Claims(posterior_mean=0.1, guide_median=0.1))
