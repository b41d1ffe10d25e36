"""Every public module, class, function and method of mien says what it does (issue 10, item 7), and
the names ``import mien`` exports name each of their parameters in their docstrings."""
import ast
import dataclasses
import enum
import inspect
import re
from pathlib import Path

import pytest

import mien

SOURCE = Path(__file__).resolve().parents[1] / "src" / "mien"


def undocumented(source: str, where: str) -> list[str]:
    """``where`` plus line and name of each public (no leading underscore) top-level class or
    function, or method of a public class, without a docstring; ``where: module`` when the module
    itself has none."""
    tree = ast.parse(source)
    missing = [] if ast.get_docstring(tree) else [f"{where}: module"]
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or node.name.startswith("_"):
            continue
        if not ast.get_docstring(node):
            missing.append(f"{where}:{node.lineno} {node.name}")
        if isinstance(node, ast.ClassDef):
            missing += [f"{where}:{sub.lineno} {node.name}.{sub.name}" for sub in node.body
                        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and not sub.name.startswith("_")
                        and not ast.get_docstring(sub)]
    return missing


def test_the_check_finds_a_public_name_without_a_docstring():
    source = ('"""A module."""\ndef shown():\n    pass\ndef _hidden():\n    pass\n'
              'class Thing:\n    """A thing."""\n    def size(self):\n        return 1\n')
    assert undocumented(source, "x.py") == ["x.py:2 shown", "x.py:8 Thing.size"]
    assert undocumented("def f():\n    '''Doc.'''\n", "y.py") == ["y.py: module"]


def test_every_public_name_in_the_package_has_a_docstring():
    files = sorted(SOURCE.rglob("*.py"))
    assert len(files) > 20, f"expected mien's sources under {SOURCE}"
    missing = [m for f in files for m in undocumented(f.read_text(encoding="utf-8"), str(f.relative_to(SOURCE.parent)))]
    assert not missing, "public names without a docstring:\n" + "\n".join(missing)


def _parameters(function) -> list[str]:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # builtins without a signature
        return []
    return [p for p in signature.parameters if p not in ("self", "cls") and not p.startswith("_")]


def _unnamed(function, doc: str | None) -> list[str]:
    return [p for p in _parameters(function) if not re.search(rf"\b{re.escape(p)}\b", doc or "")]


def _exported():
    """The classes and functions of ``mien.__all__`` (its data, ``COLUMNS``, is described by ``mien schema``)."""
    values = [(name, getattr(mien, name)) for name in mien.__all__ if name != "__version__"]
    return [(name, v) for name, v in values if inspect.isclass(v) or inspect.isfunction(v)]


@pytest.mark.parametrize("name,value", _exported(), ids=[name for name, _ in _exported()])
def test_exported_names_say_what_their_parameters_are(name, value):
    assert inspect.getdoc(value), f"mien.{name} has no docstring"
    unnamed = []
    if inspect.isfunction(value):
        unnamed += [f"{name}({p})" for p in _unnamed(value, inspect.getdoc(value))]
    elif not issubclass(value, (BaseException, enum.Enum)):
        init = vars(value).get("__init__")
        doc = inspect.getdoc(value) + "\n" + ("" if init is None or dataclasses.is_dataclass(value)
                                              else inspect.getdoc(init) or "")
        unnamed += [f"{name}({p})" for p in _unnamed(value, doc)]
        for attr, member in vars(value).items():
            function = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            if attr.startswith("_") or not inspect.isfunction(function):
                continue
            assert inspect.getdoc(function), f"mien.{name}.{attr} has no docstring"
            unnamed += [f"{name}.{attr}({p})" for p in _unnamed(function, inspect.getdoc(function))]
    assert not unnamed, "parameters their docstring does not name: " + ", ".join(unnamed)
