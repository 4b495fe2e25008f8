"""Whether each call the config describes can be made with the arguments it gives.

A `_target_` block is a call: its keys must be arguments of the target (unless
the target takes `**kwargs`), the arguments without a default must be there
(unless the block is `_partial_`), and each value must fit the parameter's
annotation where the annotation is plain enough to judge. The Trainer options,
the dataloader options and `seed` are judged the same way against what reads
them. `launch` runs this before it writes anything, so a typo or a value of the
wrong type is one line naming the key, not a traceback after the run folder
exists (or, for a Trainer option, after the first stage ran).

What is not judged: values that are `_target_` blocks themselves (they are
calls of their own), values an interpolation gives only inside a job
(`${hydra:...}`) and `???`, annotations this module cannot read, and
annotations other than plain types (`int`, `float`, `bool`, `str`, `None`,
paths, `Literal`, unions, and lists, tuples and mappings of those). A class no
config value can be (a Tensor) leaves a union to its other members.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from launcher.components.building import user_spelling as shown_target
from launcher.components.selection import CONSTRUCTION_KEYS
from launcher.components.targets import _nearby
from launcher.errors import ConfigError
from launcher.identity import override_value
from launcher.plan.type_judge import (
    _SEQUENCES,
    UNJUDGED,
    Verdict,
    literal_of_values,
    problem,
    text,
    verdict,
)

if TYPE_CHECKING:
    from launcher.plan.calls import Setting

_EMPTY = inspect.Parameter.empty
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def signature_of(obj: Any) -> inspect.Signature | None:
    """The call signature with evaluated annotations; None for objects without one.

    Annotations that do not evaluate (names imported only for type checkers) are
    evaluated one by one; those that still fail stay strings, which are not judged."""
    try:
        return inspect.signature(obj, eval_str=True)
    except Exception:  # no signature, or an annotation that does not evaluate
        return _evaluated_one_by_one(obj)


def _evaluated_one_by_one(obj: Any) -> inspect.Signature | None:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None  # builtins and other callables without a signature: nothing to check
    scope = _namespace(obj)
    return signature.replace(parameters=[
        p.replace(annotation=_evaluated(p.annotation, scope))
        for p in signature.parameters.values()])


def _namespace(obj: Any) -> dict:
    """The globals the annotations of `obj`'s signature were written in."""
    for owner in getattr(obj, "__mro__", ()):
        if "__init__" in vars(owner):
            obj = owner
            break
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    return dict(vars(module)) if module is not None else {}


def _evaluated(annotation: Any, scope: dict) -> Any:
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, scope)  # as inspect.signature(eval_str=True) does
    except Exception:  # any error of the annotation's own code: it stays unjudged
        return annotation


def require_contract(obj: Any, names: Iterable[str], *, key: str, target: str) -> None:
    """Refuse a constructor that cannot be called with exactly the keyword arguments
    the launcher passes (the block's other keys are settings, not arguments)."""
    names = list(names)
    signature = signature_of(obj)
    if signature is None:
        return
    try:
        signature.bind(**{n: None for n in names})
    except TypeError as exc:
        wanted = ", ".join(names)
        raise ConfigError(
            f"'{shown_target(target)}' cannot be constructed with ({wanted}): {exc}",
            key=key, hint=f"its __init__ must accept keyword arguments {wanted}") from None


def check_block(obj: Any, block: Any, *, key: str, target: str, given: Sequence[str] = (),
                settings: Mapping[str, Setting] | None = None) -> None:
    """Check the `_target_` block at `key` as the call of `obj` it becomes; `given` are
    arguments the launcher adds, `settings` keys the launcher reads and removes."""
    settings = settings or {}
    for name, setting in settings.items():
        if name in block:
            setting.require(resolved(block, name), key=f"{key}.{name}")
    arguments = {k: resolved(block, k) for k in block
                 if k not in CONSTRUCTION_KEYS and k not in settings}
    positional = resolved(block, "_args_") if "_args_" in block else []
    check_call(obj, arguments, key=key, target=target, given=given,
               partial="_partial_" in block and resolved(block, "_partial_") is True,
               positional=positional if isinstance(positional, list) else [])


def check_call(obj: Any, arguments: Mapping[str, Any], *, key: str, target: str,
               given: Sequence[str] = (), partial: bool = False,
               positional: Sequence[Any] = ()) -> None:
    """Refuse what calling `obj` with these arguments would refuse: unknown names,
    missing required ones, values that do not fit their annotation."""
    signature = signature_of(obj)
    if signature is None:
        return
    owner = shown_target(target)
    _require_takes(signature, given, key=key, owner=owner)
    for name in arguments:
        _require_known(signature, name, key=key, owner=owner, given=given)
    bound = _bind_positional(signature, positional, key=key, owner=owner)
    if not partial:
        _require_all(signature, {*arguments, *given, *bound}, key=key, owner=owner)
    for name, value in arguments.items():
        if name in signature.parameters:
            require_fit(signature.parameters[name], value, key=f"{key}.{name}", owner=owner)


def _require_takes(signature: inspect.Signature, given: Sequence[str], *, key: str,
                   owner: str) -> None:
    """The arguments the launcher passes must be ones the target takes."""
    for name in given:
        parameter = signature.parameters.get(name)
        if not ((parameter is not None and parameter.kind in _NAMED)
                or _takes_var_kwargs(signature)):
            raise ConfigError(f"'{owner}' cannot be called with '{name}', which the launcher "
                              "passes", key=f"{key}._target_",
                              hint=f"choose a target that takes '{name}'")


def _require_known(signature: inspect.Signature, name: str, *, key: str, owner: str,
                   given: Sequence[str]) -> None:
    if name in given:
        raise ConfigError(f"'{name}' is passed by the launcher; the config cannot set it",
                          key=f"{key}.{name}", hint="remove it")
    parameter = signature.parameters.get(name)
    if (parameter is not None and parameter.kind in _NAMED) or _takes_var_kwargs(signature):
        return
    accepted = [p.name for p in signature.parameters.values()
                if p.kind in _NAMED and p.name not in given]
    own = owner.startswith("src.")  # the recipe's own class may grow the argument
    raise ConfigError(f"'{owner}' has no argument '{name}' (it takes: {', '.join(accepted)})",
                      key=f"{key}.{name}", hint=_nearby(name, accepted) or (
                          "remove the key or add the argument" if own else "remove the key"))


def _bind_positional(signature: inspect.Signature, values: Sequence[Any], *, key: str,
                     owner: str) -> dict[str, Any]:
    """`_args_` given to the leading positional parameters, each judged."""
    slots = [p for p in signature.parameters.values() if p.kind in _POSITIONAL]
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL
                  for p in signature.parameters.values())
    if len(values) > len(slots) and not varargs:
        raise ConfigError(f"'{owner}' takes at most {len(slots)} positional argument(s), "
                          f"not {len(values)}", key=f"{key}._args_",
                          hint="name the arguments as keys of the block instead")
    for i, (parameter, value) in enumerate(zip(slots, values, strict=False)):
        require_fit(parameter, value, key=f"{key}._args_[{i}]", owner=owner)
    return {p.name: v for p, v in zip(slots, values, strict=False)}


def _require_all(signature: inspect.Signature, supplied: set[str], *, key: str,
                 owner: str) -> None:
    for parameter in signature.parameters.values():
        if (parameter.default is _EMPTY and parameter.name not in supplied
                and parameter.kind in (*_POSITIONAL, inspect.Parameter.KEYWORD_ONLY)):
            example = _example(parameter.annotation, _EMPTY)
            raise ConfigError(
                f"'{owner}' needs argument '{parameter.name}', which has no default",
                key=f"{key}.{parameter.name}",
                hint=f"e.g. +{dotted(key)}.{parameter.name}={example}" if example
                else f"add '{parameter.name}: <value>' to '{key}'")


def require_fit(parameter: inspect.Parameter, value: Any, *, key: str, owner: str) -> None:
    """Refuse a value that does not fit the parameter's annotation."""
    reason = problem(parameter.annotation, value)
    if reason is None:
        return
    spelled = text(parameter.annotation)
    takes = f" takes {spelled}" if len(spelled) <= 60 else ""
    example = _example(parameter.annotation, parameter.default)
    raise ConfigError(f"{reason} ({owner}'s {parameter.name}{takes})", key=key,
                      hint=f"e.g. {dotted(key)}={example}" if example else None)


def _takes_var_kwargs(signature: inspect.Signature) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())


def _example(annotation: Any, default: Any) -> str | None:
    """A value for the hint: the default when it fits, else one the annotation takes."""
    if (default is not _EMPTY and default is not None
            and verdict(annotation, default) is Verdict.FITS):
        return override_value(default)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        found = (_example(m, _EMPTY) for m in args if m is not type(None))
        return next((e for e in found if e), None)
    if origin is Literal:
        return override_value(args[0])
    if origin in _SEQUENCES and args:
        item = _example(args[0], _EMPTY)
        return f"[{item},{item}]" if item else None
    return _EXAMPLES.get(annotation)


_EXAMPLES = {int: "10", float: "0.1", bool: "true"}


def dotted(key: str) -> str:
    return re.sub(r"\[(\d+)\]", r".\1", key)


def resolved(node: Any, key: Any) -> Any:
    """`node[key]` as plain data, interpolations resolved; UNJUDGED for a `???` or an
    interpolation that only resolves inside a job (`${hydra:...}`)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if not OmegaConf.is_config(node):
        return node[key]
    try:
        value = node[key]
        if OmegaConf.is_config(value):
            return OmegaConf.to_container(value, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException:
        return UNJUDGED  # the job resolves it; judging it here would guess
    return value



# ---- for the check cache ----------------------------------------------------------
def compares_values(obj: Any) -> bool:
    """Whether judging the arguments of `obj` compares a number or a boolean by value
    (a `Literal[1, 2]`), which a check key holding only their types cannot stand for."""
    signature = signature_of(obj)
    return signature is not None and any(
        literal_of_values(p.annotation) for p in signature.parameters.values())
