"""Typer options generated from a configuration dataclass: one option per field.

:func:`config_command` gives a command one ``--option`` per field of a dataclass
(:mod:`training.config_fields`): the option's name is the field's (``learning_rate`` ->
``--learning-rate``) unless ``flags`` keeps an older spelling, its type and default are
the field's and its help is the field's docstring. Nothing about a field is written
twice, and a new field is on the command line the moment it exists.

The command function receives its own parameters plus ``config``, a :class:`ConfigArgs`
that says which values the user typed (``given``): a command that layers presets under
the user's choices needs to know (``train-teacher`` does).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

import typer

from training.config_fields import field_default, field_docs

_CTX = "_config_cli_ctx"
_SCALARS = (str, int, float, bool)


@dataclasses.dataclass(frozen=True)
class ConfigArgs:
    """The configuration fields of one command-line invocation.

    Attributes:
        values: every field: the value typed, else the field's default.
        given: names of the fields typed on the command line.
    """

    values: dict[str, Any]
    given: frozenset[str]

    def given_values(self) -> dict[str, Any]:
        """Only the fields typed on the command line."""
        return {k: v for k, v in self.values.items() if k in self.given}


def config_command(
    cls: type, *, flags: Mapping[str, Sequence[str]] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: the command gets one option per field of dataclass ``cls`` after its own
    parameters, and is called with its own arguments plus ``config=ConfigArgs``.

    Args:
        cls: the configuration dataclass (every field documented, see
            :func:`training.config_fields.field_docs`; field types str, int, float, bool,
            ``X | None`` of those, or ``list[str]``).
        flags: field name -> option names replacing the default ``--field-name``, e.g.
            ``{"env": ("--scenario", "--env")}``; a bool takes ``"--on/--off"``.
    """
    options = _field_parameters(cls, dict(flags or {}))
    names = [p.name for p in options]

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(func, include_extras=True)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in inspect.signature(func).parameters.values()
            if p.name != "config"
        ]
        clash = {p.name for p in own} & set(names)
        if clash:
            raise TypeError(f"{func.__name__}: parameters clash with {cls.__name__} fields {clash}")
        ctx = inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            context: typer.Context = kwargs.pop(_CTX)
            values = {name: kwargs.pop(name) for name in names}
            # Typer ships its own copy of click: compare the source by name, not identity.
            given = frozenset(
                name
                for name in names
                if getattr(context.get_parameter_source(name), "name", None) == "COMMANDLINE"
            )
            return func(**kwargs, config=ConfigArgs(values, given))

        params = [*own, *options, ctx]
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


def option_argv(
    cls: type, name: str, value: Any, flags: Mapping[str, Sequence[str]] | None = None
) -> list[str]:
    """The command-line words that set field ``name`` of ``cls`` to ``value`` (the inverse
    of the options :func:`config_command` generates; ``[]`` for ``None``)."""
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    decls = (flags or {}).get(name) or (_default_flag(name, _field_type(cls, field)),)
    primary = decls[0]
    if value is None:
        return []
    if isinstance(value, bool):
        on, _, off = primary.partition("/")
        return [on if value else (off or "--no-" + on.removeprefix("--"))]
    if isinstance(value, list | tuple):
        return [word for item in value for word in (primary, str(item))]
    return [primary, str(value)]


def _default_flag(name: str, tp: Any) -> str:
    flag = "--" + name.replace("_", "-")
    return f"{flag}/--no-{flag[2:]}" if tp is bool else flag


def _field_type(cls: type, field: dataclasses.Field[Any]) -> Any:
    tp = typing.get_type_hints(cls)[field.name]
    if tp in _SCALARS:
        return tp
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        if inner in _SCALARS and inner is not bool:
            return tp
    if origin is list and args and args[0] in _SCALARS and args[0] is not bool:
        return tp
    raise TypeError(f"{cls.__name__}.{field.name}: type {tp} has no command-line form")


def _field_parameters(cls: type, flags: dict[str, Sequence[str]]) -> list[inspect.Parameter]:
    docs = field_docs(cls)
    unknown = set(flags) - set(docs)
    if unknown:
        raise TypeError(f"flags for unknown {cls.__name__} fields: {sorted(unknown)}")
    params = []
    for field in dataclasses.fields(cls):
        tp = _field_type(cls, field)
        decls = tuple(flags.get(field.name, ()))
        option = typer.Option(*decls, help=docs[field.name], show_default=True)
        default = field_default(field)
        params.append(
            inspect.Parameter(
                field.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if default is dataclasses.MISSING else default,
                annotation=Annotated[tp, option],
            )
        )
    return params
