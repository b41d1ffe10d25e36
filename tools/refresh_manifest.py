"""Recompute sha256 and size of every model listed in src/mien/models/manifest.json.

Run after a shipped model is deliberately replaced (e.g. training/train_perceived.py --install);
the provenance fields stay as they are, so update them by hand if the source changed.
"""
import hashlib
import json
from pathlib import Path

MODELS = Path(__file__).resolve().parents[1] / "src" / "mien" / "models"

manifest = json.loads((MODELS / "manifest.json").read_text())
for name, entry in manifest["models"].items():
    data = (MODELS / name).read_bytes()
    entry["sha256"], entry["bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    print(f"{name}: {entry['sha256'][:12]}… {len(data)} bytes")
(MODELS / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
