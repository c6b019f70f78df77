"""Settings dataclasses as the one place for each default, range and help text.

A settings field made with :func:`setting` carries its help and the range a form offers in its
metadata; :func:`add_argument` builds a command-line option from a field and
:func:`spin_box_options` the keyword arguments of a Qt spin box, so the command line and the
widgets show the same defaults the dataclass uses. The dataclass's own ``__post_init__`` checks
stay the hard limits (a form may offer less than what is valid).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any


def setting(
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    step: float | None = None,
    choices: Sequence[Any] | None = None,
    **metadata: Any,
) -> Any:
    """A dataclass field with its default, help, the range a form offers and its choices."""
    return dataclasses.field(default=default, metadata={
        "help": help, "minimum": minimum, "maximum": maximum, "step": step,
        "choices": None if choices is None else tuple(choices), **metadata,
    })


def _field(cls: type, name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise AttributeError(f"{cls.__name__} has no setting {name!r}")


def default_of(cls: type, name: str) -> Any:
    """The default of setting ``name`` of the dataclass ``cls``."""
    f = _field(cls, name)
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise ValueError(f"{cls.__name__}.{name} has no default")


def help_of(cls: type, name: str) -> str | None:
    """The help text of setting ``name`` (None when the field has none)."""
    return _field(cls, name).metadata.get("help")


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return " ".join(_shown(v) for v in value)
    return str(value)


def _value_type(cls: type, name: str) -> Any:
    """The type of one value of setting ``name`` (``int | None`` gives int)."""
    kind = typing.get_type_hints(cls)[name]
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        (kind,) = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) is typing.Literal:
        return str
    if typing.get_origin(kind) is tuple:
        return typing.get_args(kind)[0]
    return kind


def add_argument(
    parser: argparse.ArgumentParser | argparse._ActionsContainer,
    cls: type,
    name: str,
    *flags: str,
    help: str | None = None,
    **kwargs: Any,
) -> argparse.Action:
    """Add the option for setting ``name`` of the dataclass ``cls`` to ``parser``.

    The flag is ``--name-with-dashes`` unless ``flags`` are given; type, default, choices and
    help come from the field (``help`` and ``kwargs`` such as ``dest``, ``metavar`` or a
    ``default`` of None, meaning "the setting's default", pass through). The help ends with
    the setting's default, so ``--help`` shows the value the dataclass uses.
    """
    f = _field(cls, name)
    value = default_of(cls, name)
    text = help if help is not None else f.metadata.get("help")
    kind = _value_type(cls, name)
    options: dict[str, Any] = {"default": value}
    if kind is bool:
        options["action"] = "store_true" if not value else argparse.BooleanOptionalAction
    else:
        if kind is not str:
            options["type"] = kind
        if f.metadata.get("choices"):
            options["choices"] = f.metadata["choices"]
    options.update(kwargs)
    if text is not None and value is not None and kind is not bool and "default" not in text:
        text = f"{text} (default {_shown(value)})"
    if text is not None:
        options["help"] = text
    return parser.add_argument(*(flags or (f"--{name.replace('_', '-')}",)), **options)


def spin_box_options(cls: type, name: str) -> dict[str, Any]:
    """Keyword arguments of a Qt spin box for setting ``name``: its range, step, default value
    and help as the tooltip (only those the field has)."""
    f = _field(cls, name)
    options = {
        "minimum": f.metadata.get("minimum"),
        "maximum": f.metadata.get("maximum"),
        "singleStep": f.metadata.get("step"),
        "value": default_of(cls, name),
        "toolTip": f.metadata.get("help"),
    }
    return {k: v for k, v in options.items() if v is not None}
