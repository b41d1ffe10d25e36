"""Everything mien ships is checked against the sha256 manifest, and every refusal is a message
(issue 14 item 8)."""
import hashlib
import json
import shutil

import pytest

from mien import actions, geometry, perceived, runtime
from mien.cli import main

CACHED = (runtime._manifest_document, runtime.verified_model_path, perceived.model_card, actions.population_neutral,
          geometry.canonical_face)


def clear_caches():
    for function in CACHED:
        function.cache_clear()


@pytest.fixture()
def package_copy(tmp_path, monkeypatch):
    """A copy of the shipped models and data that the test may damage."""
    models, data = tmp_path / "models", tmp_path / "data"
    shutil.copytree(runtime.models_dir(), models)
    shutil.copytree(runtime.data_dir(), data)
    monkeypatch.setattr(runtime, "models_dir", lambda: models)
    monkeypatch.setattr(runtime, "data_dir", lambda: data)
    clear_caches()
    yield tmp_path
    clear_caches()


def test_every_shipped_file_is_in_the_manifest_and_matches_it():
    shipped = {f"{folder.name}/{p.name}" for folder in (runtime.models_dir(), runtime.data_dir())
               for p in folder.iterdir() if p.is_file() and p.name != runtime.MANIFEST_NAME}
    assert set(runtime.shipped_checksums()) == shipped
    for name in shipped:
        runtime.verified_bytes(name)


def test_a_changed_temperature_is_refused(package_copy):
    card_path = package_copy / "models" / "perceived.json"
    card = json.loads(card_path.read_text())
    card["temperature"] = 50.0
    card_path.write_text(json.dumps(card))
    with pytest.raises(runtime.ModelFileError, match="perceived.json is corrupted or was changed.*force-reinstall"):
        perceived.model_card()


def test_changed_thresholds_are_refused(package_copy):
    path = package_copy / "data" / "neutral_face.npz"
    data = dict(runtime.verified_npz("data/neutral_face.npz"))
    data["thresholds"] = data["thresholds"] * 10
    with open(path, "wb") as fh:
        import numpy as np

        np.savez(fh, **data)
    with pytest.raises(runtime.ModelFileError, match="neutral_face.npz is corrupted or was changed"):
        actions.population_neutral()


def test_a_damaged_npz_is_a_clear_error_even_when_its_checksum_was_updated(package_copy):
    path = package_copy / "data" / "canonical_face.npz"
    path.write_bytes(path.read_bytes()[:2000])
    manifest_path = package_copy / "models" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["data/canonical_face.npz"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(runtime.ModelFileError, match="canonical_face.npz is not a readable .npz archive"):
        geometry.canonical_face()


def test_analyze_refuses_a_tampered_model_with_exit_2(package_copy, tmp_path, capsys):
    card_path = package_copy / "models" / "perceived.json"
    card_path.write_text(card_path.read_text().replace('"temperature": 0.', '"temperature": 5'))
    out = tmp_path / "faces.csv"
    assert main(["analyze", str(runtime.data_dir() / "astronaut.png"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mien: error: shipped file") and "perceived.json is corrupted or was changed" in err
    assert "Traceback" not in err and not out.exists()
