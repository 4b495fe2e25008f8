"""Does a config value fit a parameter's annotation? And how to say it when not.

Only annotations plain enough to judge from a YAML value are judged: `int`,
`float` (an int will do), `bool`, `str`, `None`, paths, `Literal`, unions, and
lists, tuples and mappings of those. Anything else (a class no config value
can be, such as a Tensor) is not judged, and leaves a union to its other
members. The nouns and examples here make the one-line errors of
`launcher.plan.arguments` read as a person would write them.
"""

from __future__ import annotations

import enum
import inspect
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping, MutableMapping, MutableSequence, Sequence
from pathlib import PurePath
from typing import Any, Literal

_EMPTY = inspect.Parameter.empty
_SEQUENCES = (list, tuple, Sequence, MutableSequence)
_MAPPINGS = (dict, Mapping, MutableMapping)


class _Unjudged:
    """A value this check cannot see: `???`, or an interpolation only a job resolves."""

    def __repr__(self) -> str:
        return "<unjudged>"


UNJUDGED = _Unjudged()


# ---- the type judge -----------------------------------------------------------
class Verdict(enum.Enum):
    FITS = "fits"
    MISFITS = "misfits"
    UNKNOWN = "unknown"  # the annotation is beyond judging
    FOREIGN = "foreign"  # a class no config value can be an instance of (a Tensor)


def problem(annotation: Any, value: Any) -> str | None:
    """Why `value` (plain config data) does not fit `annotation`; None when it fits
    or when the annotation is beyond judging."""
    if verdict(annotation, value) is not Verdict.MISFITS:
        return None
    return f"{shown_value(value)} is not {noun(annotation)}"


def verdict(annotation: Any, value: Any) -> Verdict:
    """Judge plain config data against an annotation."""
    if (value is UNJUDGED or _is_call(value) or isinstance(annotation, str)
            or annotation in (_EMPTY, Any, object)):
        return Verdict.UNKNOWN
    if annotation is None or annotation is type(None):
        return _fits(value is None)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return verdict(args[0], value)
    if origin in (typing.Union, types.UnionType):
        return _union(args, value)
    if origin is Literal:
        return _literal(args, value)
    if annotation in _SCALARS:
        return _fits(_SCALARS[annotation](value))
    container = origin or annotation
    if container in _SEQUENCES:
        return _sequence(container, args, value)
    if container in _MAPPINGS:
        return _mapping(args, value)
    if _is_path(container):
        return _fits(isinstance(value, str))
    if inspect.isclass(annotation):
        return _instance(annotation, value)
    return Verdict.UNKNOWN


_SCALARS: dict[Any, Callable[[Any], bool]] = {
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),  # 3 for 3.0
    str: lambda v: isinstance(v, str),
}


def _fits(ok: bool) -> Verdict:
    return Verdict.FITS if ok else Verdict.MISFITS


def _is_call(value: Any) -> bool:
    return isinstance(value, Mapping) and "_target_" in value


def _is_path(cls: Any) -> bool:
    return cls is os.PathLike or (inspect.isclass(cls) and issubclass(cls, PurePath))


def _union(members: tuple, value: Any) -> Verdict:
    """Fits one member; a misfit only when a member that says something (not None,
    not a foreign class) refused it."""
    verdicts = [verdict(m, value) for m in members]
    if Verdict.FITS in verdicts:
        return Verdict.FITS
    if Verdict.UNKNOWN in verdicts:
        return Verdict.UNKNOWN
    judged = [v for m, v in zip(members, verdicts, strict=True)
              if v is Verdict.MISFITS and m is not type(None)]
    return Verdict.MISFITS if judged else Verdict.UNKNOWN


def _literal(options: tuple, value: Any) -> Verdict:
    if not all(o is None or isinstance(o, str | int | float) for o in options):
        return Verdict.UNKNOWN  # enum members and the like
    return _fits(any(type(o) is type(value) and o == value for o in options))


def _sequence(container: Any, args: tuple, value: Any) -> Verdict:
    """A list or tuple is a list in YAML; a string is a Sequence only where one is asked."""
    if not (isinstance(value, list | tuple)
            or (container is Sequence and isinstance(value, str))):
        return Verdict.MISFITS
    if not args:
        return Verdict.FITS
    items = list(value)
    if container is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        if len(items) != len(args):
            return Verdict.MISFITS
        return _all(verdict(a, v) for a, v in zip(args, items, strict=True))
    return _all(verdict(args[0], v) for v in items)


def _mapping(args: tuple, value: Any) -> Verdict:
    if not isinstance(value, Mapping):
        return Verdict.MISFITS
    if not args:
        return Verdict.FITS
    return _all([*(verdict(args[0], k) for k in value), *(verdict(args[1], v)
                                                          for v in value.values())])


def _all(verdicts: Iterable[Verdict]) -> Verdict:
    """A container fits when every item fits; one misfit is enough to refuse it."""
    seen = set(verdicts)
    if Verdict.MISFITS in seen:
        return Verdict.MISFITS
    return Verdict.FITS if seen <= {Verdict.FITS} else Verdict.UNKNOWN


def _instance(cls: type, value: Any) -> Verdict:
    try:
        return Verdict.FITS if isinstance(value, cls) else Verdict.FOREIGN
    except TypeError:  # a protocol that cannot be checked at run time
        return Verdict.UNKNOWN


def noun(annotation: Any) -> str:
    """What an annotation asks for, in words: 'an int', 'one of 16, 32'."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return noun(args[0])
    if origin in (typing.Union, types.UnionType):
        return _union_noun(args)
    if origin is Literal:
        return "one of " + ", ".join(shown_value(o) for o in args)
    if annotation is None or annotation is type(None):
        return "null"
    if annotation in _NOUNS:
        return _NOUNS[annotation]
    container = origin or annotation
    if container in _SEQUENCES:
        if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return f"a list of {len(args)} ({', '.join(text(a) for a in args)})"
        return f"a list of {text(args[0])}" if args else "a list"
    if container in _MAPPINGS:
        return f"a mapping of {text(args[0])} to {text(args[1])}" if args else "a mapping"
    return "a path" if _is_path(container) else f"a {text(annotation)}"


_NOUNS = {bool: "true or false", int: "an int", float: "a number", str: "a string"}


def _foreign(annotation: Any) -> bool:
    """A class that is none of the judged kinds: config data is hardly ever one."""
    return (inspect.isclass(annotation) and typing.get_origin(annotation) is None
            and annotation not in (*_NOUNS, *_SEQUENCES, *_MAPPINGS)
            and not _is_path(annotation))


def _union_noun(members: tuple) -> str:
    """The members a config value could be; Literal options merged into one list."""
    said = [m for m in members if m is not type(None) and not _foreign(m)] or list(members)
    if all(typing.get_origin(m) is Literal for m in said):
        return "one of " + ", ".join(shown_value(o) for m in said for o in typing.get_args(m))
    return " or ".join(dict.fromkeys(noun(m) for m in said))


def text(annotation: Any) -> str:
    """An annotation as its source would spell it, recipe classes under `src.`."""
    if annotation is None or annotation is type(None):
        return "None"
    if inspect.isclass(annotation) and not typing.get_args(annotation):
        module = annotation.__module__
        if module in ("builtins", "typing", "collections.abc", "pathlib", "os"):
            return annotation.__qualname__
        spelled = f"{module}.{annotation.__qualname__}"
    else:
        spelled = repr(annotation)
    for prefix in ("typing.", "collections.abc.", "pathlib."):
        spelled = spelled.replace(prefix, "")
    from launcher.components.building import user_spelling

    return user_spelling(spelled.replace("NoneType", "None"))


def shown_value(value: Any) -> str:
    """A config value as YAML would show it: true, null, 'text', [1, 2]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else repr(value)



def literal_of_values(annotation: Any) -> bool:
    """A `Literal` of numbers or booleans, somewhere in the annotation."""
    if typing.get_origin(annotation) is Literal:
        return any(isinstance(o, int | float) for o in typing.get_args(annotation))
    return any(literal_of_values(a) for a in typing.get_args(annotation))
