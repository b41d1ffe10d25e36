"""Rewrite the column table of docs/schema.md from mien.results (the one schema)."""
from pathlib import Path

from mien.results import schema_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "schema.md"
MARK = "| column | type | meaning |"

text = DOC.read_text()
DOC.write_text(text[: text.index(MARK)] + schema_markdown())
print(f"wrote {DOC}")
