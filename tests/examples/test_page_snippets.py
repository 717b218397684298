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

The fresh processes are forked from one helper process per test session that has done
nothing but import torch and quivers (``_SERVER``): importing torch costs about 1.5 CPU
seconds, which 21 pages would otherwise each spend again. A forked child starts from the
state a fresh interpreter has after those imports (nothing is run, loaded or seeded
before the fork; torch's default generator still has its fixed initial seed), with its
own namespace, standard output and exit status.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
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

# The helper process: imports torch and quivers once, then for each request (one JSON
# line: page name, blocks, output files) forks a child that runs the page's blocks in
# order, in one namespace, each compiled under a name that says which block a traceback
# is in; the child's stdout and stderr go to the files, and the helper answers with the
# child's exit status. Nothing else runs before a fork.
_SERVER = """
import json, os, sys, traceback
import torch, quivers.dsl, quivers.inference, quivers.compiler, quivers.runtime

def run(page, blocks, out_path, err_path):
    with open(out_path, "w") as out, open(err_path, "w") as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
    namespace = {"__name__": "__main__"}
    try:
        for number, code in enumerate(blocks, 1):
            exec(compile(code, f"{page} [python block {number}]", "exec"), namespace)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0

for line in sys.stdin:
    request = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        status = run(*request)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    _, status = os.waitpid(pid, 0)
    print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
"""


class PageRunner:
    """The session's helper process (``_SERVER``), started on first use."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), str(ROOT / "server"), *filter(None, [env.get("PYTHONPATH")])]
        )
        env.pop("PYTHONSTARTUP", None)
        return subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=env,
            text=True,
        )

    def run(self, page: Path, out_dir: Path, timeout: float = 900) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) of the page's blocks run in a forked child."""
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        out, err = out_dir / f"{page.stem}.out", out_dir / f"{page.stem}.err"
        request = [page.name, python_blocks(page), str(out), str(err)]
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise AssertionError(f"{page.name}: the snippets ran for more than {timeout} s")
        answer = proc.stdout.readline()
        assert answer, f"{page.name}: the page runner exited (status {proc.wait()})"
        return int(json.loads(answer)), out.read_text("utf-8"), err.read_text("utf-8")

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None


@pytest.fixture(scope="module")
def page_runner() -> Iterator[PageRunner]:
    runner = PageRunner()
    yield runner
    runner.close()


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


def run_page(runner: PageRunner, page: Path, out_dir: Path) -> str:
    """Run the page's python blocks in one fresh interpreter at the repository root."""
    code, out, err = runner.run(page, out_dir)
    assert code == 0, f"{page.name}: a snippet failed\n{out}\n{err}"
    return out


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
def test_page_snippets_run_and_their_claims_hold(
    name: str, page_runner: PageRunner, tmp_path: Path
) -> None:
    out = run_page(page_runner, EXAMPLES / f"{name}.md", tmp_path)
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
