"""Configuration dataclasses documented CleanRL-style: a one-line docstring under each field.

::

    @dataclass
    class Config:
        seed: int = 0
        \"\"\"Seed of everything\"\"\"

Python keeps no trace of those string literals at run time, so :func:`field_docs` reads
them from the class's source with ``ast``. The same text is the field's documentation,
its ``--help`` line (:mod:`training.config_cli`) and the reference in the docs: written
once, next to the default.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
from collections.abc import Callable, Iterable
from typing import Any


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the docstring written right after it, for every field of dataclass
    ``cls`` (in field order). ``TypeError`` names the fields that have none."""
    return dict(_parse_docs(cls))


@functools.cache
def _parse_docs(cls: type) -> dict[str, str]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    class_def = next(node for node in tree.body if isinstance(node, ast.ClassDef))
    body = class_def.body
    found: dict[str, str] = {}
    for node, after in zip(body, [*body[1:], None], strict=True):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            found[node.target.id] = after.value.value.strip()
    names = [f.name for f in dataclasses.fields(cls)]
    missing = [name for name in names if name not in found]
    if missing:
        raise TypeError(f"{cls.__name__}: fields without a docstring: {missing}")
    return {name: found[name] for name in names}


def field_default(field: dataclasses.Field[Any]) -> Any:
    """The field's default (a fresh one for a ``default_factory``); ``dataclasses.MISSING``
    when the field is required."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def field_defaults(cls: type) -> dict[str, Any]:
    """Field name -> default, for the fields of dataclass ``cls`` that have one."""
    out = {}
    for field in dataclasses.fields(cls):
        default = field_default(field)
        if default is not dataclasses.MISSING:
            out[field.name] = default
    return out


def require(config: Any, names: Iterable[str], ok: Callable[[Any], bool], expected: str) -> None:
    """``ValueError`` naming the first field of ``names`` whose value fails ``ok``, e.g.
    ``require(cfg, ("epochs",), lambda v: v >= 1, ">= 1")``."""
    for name in names:
        value = getattr(config, name)
        if not ok(value):
            raise ValueError(f"{name} must be {expected}, got {value!r}")
