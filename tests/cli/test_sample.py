"""qvr sample: summaries, output files, data files and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from .helpers import REFERENCE, REGRESSION, one_clear_error, qvr, regression_data


@pytest.fixture
def regression(tmp_path: Path) -> tuple[Path, Path]:
    program = tmp_path / "regression.qvr"
    program.write_text(REGRESSION)
    data = tmp_path / "line.pt"
    regression_data(data, slope=1.5, intercept=-0.7, n=20)
    return program, data


def test_sample_prints_a_site_table() -> None:
    result = qvr("sample", REFERENCE, "--n", "3", "--seed", "5")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("vanilla_rnn_lm: 3 draw(s) on random prompts")
    assert lines[1].startswith("data: x (3, 8) int64")
    header = lines[2].split()
    assert header == ["site", "kind", "shape", "dtype", "mean", "sd", "min", "max"]
    h_row = next(line.split() for line in lines if line.split()[0] == "h")
    assert h_row[1:4] == ["latent", "(3,", "128)"]
    token = next(line.split() for line in lines if line.split()[0] == "next_token")
    assert token[1:4] == ["observed", "(3,)", "int64"]
    assert 0 <= int(token[-2]) <= int(token[-1]) <= 255


def test_sample_is_reproducible_and_json(tmp_path: Path) -> None:
    a = json.loads(qvr("sample", REFERENCE, "--seed", "3", "--format", "json").out)
    b = json.loads(qvr("sample", REFERENCE, "--seed", "3", "--format", "json").out)
    c = json.loads(qvr("sample", REFERENCE, "--seed", "4", "--format", "json").out)
    assert a["ok"] and a["kind"] == "sample" and a["target"] == "vanilla_rnn_lm"
    assert a["samples"] == b["samples"] and a["samples"] != c["samples"]
    assert a["samples"]["next_token"]["shape"] == [4]
    assert a["returned"] == a["samples"]["next_token"]  # the return is the traced draw


@pytest.mark.parametrize("suffix", [".pt", ".npz", ".json"])
def test_sample_out_files_are_data_for_fit(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"draws{suffix}"
    result = qvr("sample", REFERENCE, "--n", "2", "--length", "3", "--out", out)
    assert result.code == 0, result.err
    assert f"wrote {out} (x, h, next_token)" in result.out
    # what sample wrote is valid input for sample and fit
    again = qvr("sample", REFERENCE, "--data", out, "--format", "json")
    assert again.code == 0, again.err
    assert json.loads(again.out)["samples"]["h"]["shape"] == [2, 128]
    fit = qvr(
        "fit", REFERENCE, "--data", out, "--steps", "2", "--plot", tmp_path / "p.png",
        "--progress", "none",
    )  # fmt: skip
    assert fit.code == 0, fit.err


def test_sample_with_host_data_from_a_file(regression: tuple[Path, Path]) -> None:
    program, data = regression
    result = qvr("sample", program, "--data", data, "--format", "json")
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert out["samples"]["y"]["shape"] == [20, 1]
    assert set(out["samples"]) == {"slope", "intercept", "y"}


def test_json_data_with_integer_values_for_continuous_inputs(
    tmp_path: Path, regression: tuple[Path, Path]
) -> None:
    program, _ = regression
    data = tmp_path / "ints.json"
    data.write_text(json.dumps({"x": [[1], [2], [3]], "se": [[1], [1], [1]], "y": [[0], [1], [2]]}))
    assert qvr("sample", program, "--data", data).code == 0


# ----------------------------------------------------------------- bad inputs


def test_bad_program_is_the_diagnostic_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.qvr"
    bad.write_text(REFERENCE.read_text().replace("scan(cell)", "scan(cel)"))
    line = one_clear_error(qvr("sample", bad), "error[E0101]")
    assert line.startswith(f"{bad}:7:34:")
    one_clear_error(qvr("sample", tmp_path / "missing.qvr"), "missing.qvr: no such file")
    one_clear_error(qvr("sample", REFERENCE, "--target", "nope"), "no program named 'nope'")


def _data(tmp_path: Path, name: str, **tensors: object) -> Path:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(tensors))
    else:
        torch.save(tensors, path)
    return path


def test_bad_data_files_are_one_clear_line(tmp_path: Path, regression: tuple[Path, Path]) -> None:
    program, _ = regression
    x, se, y = torch.zeros(5, 1), torch.ones(5, 1), torch.zeros(5, 1)
    cases = [
        (_data(tmp_path, "no_x.pt", se=se, y=y), ["no_x.pt: missing 'x'"]),
        (_data(tmp_path, "no_se.pt", x=x, y=y), ["missing se"]),
        (_data(tmp_path, "typo.pt", x=x, se=se, y=y, slop=y), ["unknown key(s) slop", "expects x"]),
        (_data(tmp_path, "wide.pt", x=torch.zeros(5, 2), se=se, y=y), ["expected floats of shape (..., 1)", "(5, 2)"]),
        (_data(tmp_path, "rows.pt", x=x, se=se, y=torch.zeros(4, 1)), ["site 'y'", "expected floats of shape (5, 1)", "(4, 1)"]),
        (_data(tmp_path, "flat.pt", x=x, se=se, y=torch.zeros(5)), ["site 'y'", "(5, 1)", "shape (5,)"]),
        (_data(tmp_path, "host.pt", x=x, se=torch.ones(3, 1), y=y), ["host data 'se' has shape (3, 1), expected (5, ...)"]),
        (_data(tmp_path, "scalar.pt", x=torch.tensor(1.0), se=se, y=y), ["'x' is a scalar"]),
    ]  # fmt: skip
    for path, needles in cases:
        line = one_clear_error(qvr("sample", program, "--data", path), *needles)
        assert line.startswith(f"qvr sample: error: {path}:"), line
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file")
    one_clear_error(qvr("sample", program, "--data", corrupt), "corrupt.pt: cannot read")
    text = tmp_path / "data.txt"
    text.write_text("1 2 3")
    one_clear_error(qvr("sample", program, "--data", text), "unsupported data file type '.txt'")
    one_clear_error(qvr("sample", program, "--data", tmp_path / "none.pt"), "no such data file")
    one_clear_error(qvr("sample", program, "--out", tmp_path / "o.csv"), "unsupported output type")


def test_bad_token_data_names_the_site(tmp_path: Path) -> None:
    ids = torch.zeros(4, 8, dtype=torch.long)
    cases = [
        (_data(tmp_path, "oob.pt", x=ids, next_token=torch.full((4,), 999)), ["site 'next_token'", "id 999 out of range", "0..255"]),
        (_data(tmp_path, "float.pt", x=ids.float() + 0.5, next_token=torch.zeros(4)), ["'x' must hold integer ids of Token", "(4, 8)"]),
        (_data(tmp_path, "flat.pt", x=torch.zeros(4, dtype=torch.long), next_token=torch.zeros(4)), ["scan needs a sequence (batch, T) of Token", "(4,)"]),
        (_data(tmp_path, "rows.json", x=[[1, 2]] * 4, next_token=[1, 2, 3]), ["site 'next_token'", "shape (4,)", "shape (3,)"]),
    ]  # fmt: skip
    for path, needles in cases:
        one_clear_error(qvr("sample", REFERENCE, "--data", path), *needles)
        one_clear_error(qvr("fit", REFERENCE, "--data", path, "--steps", "1"), *needles)


def test_sampling_needs_only_the_inputs_but_fitting_needs_observations(tmp_path: Path) -> None:
    prompts = _data(tmp_path, "prompts.pt", x=torch.randint(0, 256, (3, 5)))
    result = qvr("sample", REFERENCE, "--data", prompts, "--format", "json")
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert out["samples"]["next_token"]["shape"] == [3]
    # the same seeded weights as without --data: the same draw for the same prompts
    same = tmp_path / "same.pt"
    assert qvr("sample", REFERENCE, "--data", prompts, "--out", same).code == 0
    again = tmp_path / "again.pt"
    assert qvr("sample", REFERENCE, "--data", same, "--out", again).code == 0
    a, b = torch.load(same, weights_only=True), torch.load(again, weights_only=True)
    assert torch.equal(a["h"], b["h"]) and torch.equal(a["next_token"], b["next_token"])
    one_clear_error(
        qvr("fit", REFERENCE, "--data", prompts), "prompts.pt: missing next_token"
    )  # fmt: skip
