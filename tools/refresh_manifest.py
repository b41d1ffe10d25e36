"""Recompute the sha256 and size of every file shipped in src/mien/models and src/mien/data.

    python tools/refresh_manifest.py

Run after a shipped file is deliberately replaced (training/train_perceived.py --install,
tools/make_neutral_face.py, a new licence text, ...). Models keep their provenance fields
(update them by hand if the source changed); every other file is listed under ``files`` by its
path in the package, added when new and dropped when gone, so nothing ships unchecked.
"""
import hashlib
import json
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mien"
MANIFEST = PACKAGE / "models" / "manifest.json"


def checksum(path: Path) -> dict:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def main() -> None:
    manifest = json.loads(MANIFEST.read_text())
    for name, entry in manifest["models"].items():
        entry.update(checksum(PACKAGE / "models" / name))
    shipped = sorted(p for folder in ("models", "data") for p in (PACKAGE / folder).iterdir()
                     if p.is_file() and p != MANIFEST and p.name not in manifest["models"])
    manifest["files"] = {p.relative_to(PACKAGE).as_posix(): checksum(p) for p in shipped}
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    for name, entry in [*(("models/" + n, e) for n, e in manifest["models"].items()), *manifest["files"].items()]:
        print(f"{name}: {entry['sha256'][:12]}… {entry['bytes']} bytes")


if __name__ == "__main__":
    main()
