"""End-to-end: the run commands through the server's worker process, with work-done
progress, cancellation (progress cancel and `qvr.cancelRun`) and failures that come
back as results while the server keeps serving."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from .lsp_helpers import (
    EXAMPLES,
    REFERENCE,
    doc_id,
    first_progress_report,
    inbox,
    open_doc,
    pos,
    progress_kinds,
    run_command,
)

REGRESSION = (EXAMPLES / "bayesian_linear_regression.qvr").read_text()
MIXTURE = (EXAMPLES / "gaussian_mixture.qvr").read_text()
CANCEL_DEADLINE = 10.0  # seconds from the cancel to the command's answer


def tokens_since(client: LanguageClient, before: set) -> list:  # type: ignore[type-arg]
    return [t for t in client.progress_reports if t not in before]


async def test_sample_reports_progress(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    before = set(client.progress_reports)
    result = await run_command(client, "qvr.sample", uri, {"n": 3, "seed": 1, "length": 5})
    assert result["ok"], result
    assert result["kind"] == "sample" and result["target"] == "vanilla_rnn_lm"
    assert result["cancelled"] is False and result["error"] is None
    assert result["samples"]["next_token"]["shape"] == [3]
    assert result["samples"]["next_token"]["dtype"] == "int64"
    assert result["samples"]["h"]["shape"] == [3, 128]
    (token,) = tokens_since(client, before)
    kinds = progress_kinds(client, token)
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"
    assert "WorkDoneProgressReport" in kinds
    begin = client.progress_reports[token][0]
    assert begin.title == "QVR: sampling" and begin.cancellable


async def test_fit_svi_reports_steps_and_losses(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REFERENCE)
    before = set(client.progress_reports)
    options = {"steps": 4, "batch": 2, "length": 3, "seed": 2}
    result = await run_command(client, "qvr.fitSvi", uri, options)
    assert result["ok"], result
    assert result["kind"] == "svi" and len(result["losses"]) == 4
    assert {p["name"] for p in result["posterior"]} == {"h"}
    assert "next_token" in result["samples"]
    (token,) = tokens_since(client, before)
    messages = [
        r.message
        for r in client.progress_reports[token]
        if isinstance(r, lsp.WorkDoneProgressReport) and r.message.startswith("step ")
    ]
    assert [m.split(" · ")[0] for m in messages] == [f"step {i}/4" for i in range(1, 5)]
    assert all(" · loss " in m for m in messages)
    percentages = [
        r.percentage
        for r in client.progress_reports[token]
        if isinstance(r, lsp.WorkDoneProgressReport)
    ]
    assert percentages == sorted(percentages) and percentages[-1] == 100
    end = client.progress_reports[token][-1]
    assert end.message == "done"


async def test_plate_programs_fit_from_the_editor_without_data(client: LanguageClient) -> None:
    """The editor's fit takes the synthetic corpus: a plate program gets one row per
    element of its set and host data of the kind its uses need (ids, positive scales)."""
    for name, site, shape in [
        ("eight_schools", "eta", [8, 1]),
        ("grouped_beta_regression", "beta", [4, 1]),
        ("ar1", "phi", []),
    ]:
        uri, _ = await open_doc(client, (EXAMPLES / f"{name}.qvr").read_text())
        result = await run_command(client, "qvr.fitSvi", uri, {"steps": 3, "seed": 1})
        assert result["ok"], (name, result["error"])
        assert len(result["losses"]) == 3
        posterior = {p["name"]: p for p in result["posterior"]}
        assert posterior[site]["shape"] == shape, (name, posterior[site])


async def test_run_nuts_reports_warmup_and_sampling(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REGRESSION)
    before = set(client.progress_reports)
    options = {"warmup": 4, "samples": 4, "batch": 6, "seed": 3}
    result = await run_command(client, "qvr.runNuts", uri, options)
    assert result["ok"], result
    assert result["kind"] == "nuts"
    names = {p["name"] for p in result["posterior"]}
    assert {"slope", "intercept", "sigma"} <= names
    assert all("r_hat" in p and "ess" in p for p in result["posterior"])
    assert len(result["diagnostics"]["acceptance"]) == 1
    # four warmup iterations start the step size from Hoffman & Gelman's heuristic and
    # adapt it towards 0.8 (0.96 on this seed): a run-away step size accepts nothing,
    # and nothing diverges on this smooth posterior
    assert 0.5 < result["diagnostics"]["acceptance"][0] <= 1.0, result["diagnostics"]
    assert result["diagnostics"]["divergences"] == [0], result["diagnostics"]
    assert len(result["diagnostics"]["warmup_divergences"]) == 1, result["diagnostics"]
    (token,) = tokens_since(client, before)
    messages = [
        r.message
        for r in client.progress_reports[token]
        if isinstance(r, lsp.WorkDoneProgressReport)
    ]
    assert any(m.startswith("warmup ") for m in messages)
    assert any(m.startswith("sampling 4/4") for m in messages)


async def cancel_long_fit(client: LanguageClient, how: str) -> None:
    uri, _ = await open_doc(client, REGRESSION)
    start = inbox(client).mark()
    run = asyncio.ensure_future(
        run_command(client, "qvr.fitSvi", uri, {"steps": 1_000_000, "seed": 4})
    )
    token, message = await first_progress_report(client, start, "step ")
    began = time.perf_counter()
    if how == "progress":
        client.window_work_done_progress_cancel(lsp.WorkDoneProgressCancelParams(token=token))
    else:
        answer = await run_command(client, "qvr.cancelRun", timeout=CANCEL_DEADLINE)
        assert answer == {"cancelled": True}
    result = await asyncio.wait_for(run, CANCEL_DEADLINE)
    assert time.perf_counter() - began < CANCEL_DEADLINE
    assert result["cancelled"] is True, result
    assert 0 < len(result["losses"]) < 1_000_000  # what was computed so far
    assert client.progress_reports[token][-1].message == "cancelled"


async def test_cancel_through_the_progress_token(client: LanguageClient) -> None:
    await cancel_long_fit(client, "progress")


async def test_cancel_through_the_cancel_command(client: LanguageClient) -> None:
    await cancel_long_fit(client, "command")


async def test_cancel_run_with_nothing_running(client: LanguageClient) -> None:
    assert await run_command(client, "qvr.cancelRun") == {"cancelled": False}


async def test_a_second_run_while_one_is_running_is_refused(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REGRESSION)
    start = inbox(client).mark()
    run = asyncio.ensure_future(run_command(client, "qvr.fitSvi", uri, {"steps": 1_000_000}))
    await first_progress_report(client, start, "step ")
    second = await run_command(client, "qvr.sample", uri)
    assert second["ok"] is False and "already in progress" in second["error"]
    await run_command(client, "qvr.cancelRun")
    assert (await asyncio.wait_for(run, CANCEL_DEADLINE))["cancelled"] is True


async def test_bad_data_is_a_clear_failure_and_the_server_keeps_serving(
    client: LanguageClient, tmp_path: Path
) -> None:
    data = tmp_path / "mixture.json"
    data.write_text(json.dumps({"x": [0, 1, 2, 3], "y": [[0.1, 0.2, 0.3]] * 4}))
    uri, _ = await open_doc(client, MIXTURE)
    result = await run_command(client, "qvr.fitSvi", uri, {"data": str(data), "steps": 3})
    assert result["ok"] is False and result["cancelled"] is False
    error = result["error"]  # names the site, the expected and the given shape
    assert "'y'" in error and "(4, 2)" in error and "(4, 3)" in error
    missing = await run_command(client, "qvr.sample", uri, {"data": str(tmp_path / "nope.json")})
    assert missing["ok"] is False and "no such data file" in missing["error"]
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=doc_id(uri), position=pos(MIXTURE, "component(z)", offset=1))
    )
    assert hover is not None and "Cluster -> Measurement" in hover.contents.value
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"x": [0, 1, 2, 3], "y": [[0.1, 0.2]] * 4}))
    result = await run_command(client, "qvr.sample", uri, {"data": str(good)})
    assert result["ok"], result
    assert result["samples"]["y"]["shape"] == [4, 2]
    # SVI needs continuous latents: the mixture's discrete assignment is a clear failure
    result = await run_command(client, "qvr.fitSvi", uri, {"data": str(good), "steps": 3})
    assert result["ok"] is False and "discrete" in result["error"] and "'z'" in result["error"]


async def test_broken_program_is_a_clear_failure(client: LanguageClient) -> None:
    text = REFERENCE.replace("scan(cell)", "scan(cel)")
    uri, _ = await open_doc(client, text)
    result = await run_command(client, "qvr.sample", uri)
    assert result["ok"] is False
    assert "unknown morphism 'cel'; did you mean 'cell'?" in result["error"]
    assert ":7:34: error[E0101]" in result["error"]
    result = await run_command(client, "qvr.sample", uri, {"target": "nope"})
    assert result["ok"] is False


async def test_unsaved_buffer_text_is_what_runs(client: LanguageClient) -> None:
    text = REFERENCE.replace("FinSet 256", "FinSet 7")
    uri, _ = await open_doc(client, text)
    result = await run_command(client, "qvr.sample", uri, {"n": 50, "length": 3})
    assert result["ok"], result
    assert result["samples"]["next_token"]["max"] <= 6


async def test_code_lens_arguments_run_the_named_target(client: LanguageClient) -> None:
    # a lens passes [uri, target] (docs/dev/editor-protocol.md, "Code lenses")
    text = (EXAMPLES / "elman_rnn_lm.qvr").read_text()
    uri, _ = await open_doc(client, text)
    result = await run_command(client, "qvr.sample", uri, "elman_rnn_lm")
    assert result["ok"], result
    assert result["target"] == "elman_rnn_lm"
    assert result["samples"]["next_token"]["dtype"] == "int64"


async def test_run_options_are_checked_and_ignored_keys_reported(client: LanguageClient) -> None:
    uri, _ = await open_doc(client, REGRESSION)
    bad = await run_command(client, "qvr.fitSvi", uri, {"steps": "10"})
    assert bad["ok"] is False and bad["kind"] == "svi"
    assert bad["error"] == "run option 'steps' must be an integer, got '10'"
    result = await run_command(client, "qvr.sample", uri, {"n": 2, "colour": "red", "steps": 3})
    assert result["ok"], result
    assert result["ignored_options"] == ["colour", "steps"]
