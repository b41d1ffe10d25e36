"""``mien audit``: a validity card for any expression model.

Scores a model's agreement with crowd labels next to what a single human achieves, with calibration,
robustness and the face conditions where it breaks, and says in plain words what the numbers cannot
mean: agreement with observers is not knowledge of what anyone feels.

    from mien.audit import load_dataset, load_model, run_audit, write_card
    ds = load_dataset("../shared/data/ferplus/data/FER2013Test")
    result = run_audit(ds, load_model("mien"))      # an AuditResult; result.to_dict() is the card's JSON
    print(result.headline.accuracy, result.headline.uar)
    write_card(result, "audit-out")

The metric functions (:mod:`mien.audit.metrics`) are pure numpy over arrays.
"""
from .card import to_html, to_json, to_markdown, write_card
from .datasets import AuditDataset, DatasetError, load_dataset
from .metrics import CLASSES
from .models import ModelError, load_model
from .result import AuditResult
from .run import run_audit, with_comparison

__all__ = ["AuditDataset", "AuditResult", "CLASSES", "DatasetError", "ModelError", "load_dataset", "load_model",
           "run_audit", "to_html", "to_json", "to_markdown", "with_comparison", "write_card"]
