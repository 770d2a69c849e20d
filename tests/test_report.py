import json

import pytest

from nucleikit import report
from nucleikit.papers import PAPERS


def test_report_rows_carry_the_papers_value(tmp_path):
    rep = report.Report("07_kinet", profile="quick")
    rep.add("KiNet", "det_f1", 0.91234, paper=("xing2019", "KiNet"))
    rep.add("ours only", "det_f1", 0.5)
    assert rep.rows[0].paper == PAPERS["xing2019"].values[("KiNet", "det_f1")]
    assert rep.rows[1].paper is None
    path = rep.save(tmp_path)
    assert path == tmp_path / "07_kinet.json"
    data = json.loads(path.read_text())
    assert data["rows"][0]["ours"] == pytest.approx(0.91234)
    assert report.load("07_kinet", tmp_path)["profile"] == "quick"


def test_unknown_paper_key_is_an_error():
    rep = report.Report("07_kinet", profile="quick")
    with pytest.raises(ValueError, match="unknown paper key 'nope'"):
        rep.add("x", "f1", 0.1, paper=("nope", "KiNet"))


def test_show_prints_a_rounded_table(capsys):
    rep = report.Report("03_segmentation", profile="quick")
    rep.add_many("weighted", {"recall": 0.87654, "precision": -0.00001}, paper=0.6)
    rep.show(decimals=2)
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["experiment", "metric", "ours", "paper"]
    assert out[2].split() == ["weighted", "recall", "0.88", "0.60"]
    assert out[3].split() == ["weighted", "precision", "0.00", "0.60"]  # no "-0.00"


def test_results_go_to_the_results_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NUCLEIKIT_RESULTS", str(tmp_path / "res"))
    path = report.Report("00_data", profile="quick").save()
    assert path == tmp_path / "res" / "00_data.json"


def test_summary_tables(tmp_path):
    for chapter, value in (("00_data", 0.5), ("07_kinet", 0.9)):
        rep = report.Report(chapter, profile="quick")
        rep.add("m", "det_f1", value, paper=("xing2019", "KiNet") if chapter == "07_kinet" else None)
        rep.save(tmp_path)
    df = report.summarize(tmp_path)
    assert list(df["chapter"]) == ["00_data", "07_kinet"]
    md, csv = report.write_summary(df, tmp_path)
    text = md.read_text()
    assert "| m | det_f1 | 0.900 | 0.898 | xing2019: KiNet |" in text
    assert csv.read_text().count("\n") == 3


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        report.write_text_atomic(target, 123)  # not a str: the write fails
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
