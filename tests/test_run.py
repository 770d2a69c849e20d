"""The rerun CLI: papermill execution, manifest, summary, errors that name the chapter and the cell."""

import json

import pytest

from nucleikit import run
from nucleikit.profiles import find_chapter

from ._notebooks import chapter_cells, make_notebook


@pytest.fixture
def checkout(tmp_path):
    """A fake checkout with two chapter notebooks; chapter 03 fails in its fourth code cell."""
    root = tmp_path / "repo"
    make_notebook(root / "notebooks" / "00_data.ipynb", chapter_cells("00_data"))
    make_notebook(
        root / "notebooks" / "03_segmentation.ipynb",
        chapter_cells("03_segmentation", "raise RuntimeError('deliberate failure')"),
    )
    return root


def test_list_prints_chapters_profiles_and_times(capsys, checkout):
    assert run.main(["--list"], root=checkout) == 0
    out = capsys.readouterr().out
    assert "00_data" in out
    assert "ready" in out
    assert "08_capstone" in out
    assert "not written" in out
    assert "quick (min)" in out
    assert "full (min)" in out


def test_nonsense_profile_fails_with_the_valid_names(capsys, checkout):
    assert run.main(["0", "--profile", "nonsense"], root=checkout) == 2
    assert "unknown profile 'nonsense'; valid profiles: quick, full" in capsys.readouterr().err


def test_unknown_knob_fails_before_any_kernel_starts(capsys, checkout, tmp_path):
    assert run.main(["0", "-p", "no_such_knob=1", "--out", str(tmp_path / "o")], root=checkout) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'no_such_knob'" in err
    valid = err.split("valid parameters: ")[1].strip().split(", ")
    assert valid[0] == "profile"
    assert {"device", "seed", "num_threads", "n_val"} <= set(valid)
    assert not (tmp_path / "o").exists()


def test_knobs_are_typed_and_targeted():
    chapters = [find_chapter(0), find_chapter(3)]
    knobs = run.parse_knobs(["seed=4", "03.num_threads=2"], chapters, "quick")
    assert knobs == {"00_data": {"seed": 4}, "03_segmentation": {"seed": 4, "num_threads": 2}}
    with pytest.raises(TypeError, match="knob 'seed'"):
        run.parse_knobs(["seed=abc"], chapters, "quick")
    with pytest.raises(ValueError, match="expected key=value"):
        run.parse_knobs(["seed"], chapters, "quick")


@pytest.mark.slow
def test_run_writes_outputs_and_names_the_failing_chapter_and_cell(checkout, tmp_path, capsys):
    out = tmp_path / "out"
    code = run.main(["0", "segmentation", "-p", "seed=2", "--out", str(out), "--jobs", "2"], root=checkout)
    assert code == 1
    err = capsys.readouterr().err
    assert "chapter 03_segmentation failed at code cell 4" in err
    assert "RuntimeError: deliberate failure" in err
    assert "raise RuntimeError" in err
    # the other chapter's results are kept
    assert (out / "executed" / "00_data.ipynb").is_file()
    result = json.loads((out / "results" / "00_data.json").read_text())
    assert result["rows"][0]["ours"] == pytest.approx(0.52)  # the knob reached the notebook
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["profile"] == "quick"
    by_key = {c["key"]: c for c in manifest["chapters"]}
    assert by_key["00_data"]["status"] == "ok"
    assert by_key["03_segmentation"]["status"] == "failed"
    assert by_key["00_data"]["parameters"] == {"profile": "quick", "seed": 2}
    assert by_key["00_data"]["peak_rss_mb"] > 20
    assert by_key["00_data"]["wall_time_s"] > 0
    assert {"numpy", "torch", "papermill"} <= set(manifest["packages"])
    assert "cpu_count" in manifest["device"]
    assert "| demo | f1 | 0.520 |" in (out / "summary.md").read_text()
    assert (out / "summary.csv").is_file()
