import json
import shutil

import pandas as pd
import pytest
from PIL import Image

from mien.cli import main
from mien.results import COLUMNS, landmark_columns


@pytest.fixture()
def batch(tmp_path, astronaut):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(astronaut).save(folder / "a.png")
    Image.fromarray(astronaut).resize((256, 256)).save(folder / "sub" / "b_é.jpg")
    Image.new("RGB", (200, 150), (90, 120, 200)).save(folder / "no_face.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "README.txt").write_text("not an image")
    return folder


def test_folder_batch_reports_each_file_and_keeps_going(batch, tmp_path, capsys):
    out = tmp_path / "faces.csv"
    code = main(["analyze", str(batch), "-o", str(out)])
    assert code == 1  # one file failed
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "skipped 1 file(s) without an image or video suffix" in err
    table = pd.read_csv(out)
    assert list(table.columns) == [c.name for c in COLUMNS]
    by_file = {s.split("/")[-1]: g for s, g in table.groupby("source")}
    assert set(by_file) == {"a.png", "b_é.jpg", "no_face.png", "broken.jpg"}
    assert (by_file["a.png"]["status"] == "ok").all() and len(by_file["a.png"]) == 1
    assert by_file["no_face.png"]["status"].item() == "no_face" and pd.isna(by_file["no_face.png"]["face"].item())
    assert by_file["broken.jpg"]["status"].item() == "error"
    assert "corrupt" in by_file["broken.jpg"]["error"].item()


@pytest.mark.parametrize("suffix", [".parquet", ".json", ".jsonl"])
def test_formats_share_one_schema(batch, tmp_path, suffix):
    out = tmp_path / f"faces{suffix}"
    main(["analyze", str(batch / "a.png"), "-o", str(out), "--landmarks"])
    if suffix == ".parquet":
        table = pd.read_parquet(out)
        assert str(table["yaw"].dtype) == "float32" and str(table["reliable"].dtype) == "boolean"
        columns = list(table.columns)
    elif suffix == ".json":
        columns = list(json.loads(out.read_text())[0])
    else:
        columns = list(json.loads(out.read_text().splitlines()[0]))
    assert columns == [c.name for c in COLUMNS] + landmark_columns()


def test_landmarks_only_on_request(batch, tmp_path):
    out = tmp_path / "faces.csv"
    assert main(["analyze", str(batch / "a.png"), "-o", str(out)]) == 0
    assert not any(c.startswith("lm") for c in pd.read_csv(out).columns)


def test_glob_and_annotate_one_picture_per_image_and_charts_on_request(batch, tmp_path):
    out = tmp_path / "faces.csv"
    assert main(["analyze", str(batch / "*.png"), "-o", str(out), "--annotate", str(tmp_path / "pics")]) == 0
    assert sorted(p.name for p in (tmp_path / "pics").iterdir()) == ["a_annotated.jpg", "no_face_annotated.jpg"]
    assert main(["analyze", str(batch / "*.png"), "-o", str(out), "--annotate", str(tmp_path / "more"), "--charts"]) == 0
    assert sorted(p.name for p in (tmp_path / "more").iterdir()) == ["a_annotated.jpg", "a_face0_action_units.png",
                                                                   "no_face_annotated.jpg"]


def test_bad_output_suffix_is_a_usage_error(batch, tmp_path, capsys):
    assert main(["analyze", str(batch / "a.png"), "-o", str(tmp_path / "faces.xlsx")]) == 2
    assert "must end in one of" in capsys.readouterr().err


def test_failed_write_keeps_the_previous_output(batch, tmp_path, monkeypatch):
    out = tmp_path / "faces.csv"
    out.write_text("previous results\n")

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", explode)
    assert main(["analyze", str(batch / "a.png"), "-o", str(out)]) == 1
    assert out.read_text() == "previous results\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".faces")] == []


def test_demo_writes_table_and_picture(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 0
    table = pd.read_csv(tmp_path / "demo" / "faces.csv")
    assert len(table) == 1 and table["reliable"].item()
    assert table["source"].item() == str(tmp_path / "demo" / "astronaut.png")  # the file beside the outputs
    assert (tmp_path / "demo" / "astronaut_annotated.jpg").stat().st_size > 10_000
    assert "faces.csv" in capsys.readouterr().out


def test_help_is_complete(capsys):
    for argv in (["--help"], ["analyze", "--help"], ["demo", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
    text = capsys.readouterr().out
    for word in ("--annotate", "--landmarks", "--detector", "--output-dir", "biometric", "action units", "perceived",
                 "video", "audit", "--report", "--charts", "openface"):
        assert word in text


def test_schema_doc_is_up_to_date():
    from pathlib import Path

    from mien.results import schema_markdown

    doc = (Path(__file__).resolve().parents[1] / "docs" / "schema.md").read_text()
    assert schema_markdown() in doc, "regenerate it: python tools/make_schema_doc.py"


def test_outputs_get_the_usual_permissions_not_those_of_a_temporary_file(batch, tmp_path):
    import stat

    main(["analyze", str(batch / "a.png"), "-o", str(tmp_path / "out.csv")])
    (tmp_path / "plain.txt").write_text("made the usual way")
    mode = stat.S_IMODE((tmp_path / "out.csv").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
