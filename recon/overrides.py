"""`--set section.field=value`: one field of a typed config dataclass, typed by the field.

`override` sets a `TrainConfig` field (``optim.steps=2000``, ``depth=off``); `set_field` does
the same on any config dataclass (`SfmConfig` takes the CLI's ``sfm.*`` assignments).
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import Any, Literal, Optional, Sequence, get_args, get_origin, get_type_hints

from ..data.errors import VoxsplatError

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _fields(obj) -> list[str]:
    return [f.name for f in fields(obj)]


def _typed(old: Any, value: str, assignment: str, key: str) -> Any:
    if isinstance(old, bool):
        if value.lower() not in TRUE + FALSE:
            raise VoxsplatError(f"--set {assignment}: {key} takes true or false")
        return value.lower() in TRUE
    try:
        if isinstance(old, tuple):  # e.g. mvs.fallback_range=0.3,5
            items = [v.strip() for v in value.strip("()[] ").split(",") if v.strip()]
            if old and len(items) != len(old):
                raise ValueError
            return tuple(type(o)(v) for o, v in zip(old, items)) if old else tuple(map(float, items))
        return type(old)(value)
    except (TypeError, ValueError):
        if isinstance(old, tuple):
            raise VoxsplatError(f"--set {assignment}: {key} takes {len(old)} comma-separated "
                                f"values, e.g. {key}={','.join(map(str, old))}") from None
        raise VoxsplatError(f"--set {assignment}: '{value}' is not a valid "
                            f"{type(old).__name__} for {key}") from None


def assigned_key(assignment: str) -> str:
    """The field path a ``--set`` assignment names: ``optim.steps`` of ``optim.steps = 300``."""
    return assignment.partition("=")[0].strip()


def set_field(obj, assignment: str, prefix: str = ""):
    """A copy of the config dataclass `obj` with one ``path.to.field=value`` (`assignment`,
    its key under `prefix`, e.g. ``sfm.``) applied; the value takes the field's type (bools:
    true/false, 1/0, yes/no, on/off), and a `Literal` field's choices are checked.

    Raises:
        VoxsplatError: no `=`, a path that names no field, a whole section instead of one of
            its fields, or a value of the wrong type or outside the field's choices.
    """
    key, sep, value = assignment.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key:
        raise VoxsplatError(f"--set {assignment}: expected section.field=value, e.g. "
                            f"optim.batch_size=4")
    parts = key[len(prefix):].split(".") if key.startswith(prefix) else [""]
    chain = [obj]
    for i, name in enumerate(parts):
        target = chain[-1]
        if not is_dataclass(target) or name not in _fields(target):
            where = ".".join(parts[:i]) or prefix.rstrip(".") or "the config"
            raise VoxsplatError(f"--set {assignment}: no config field '{key}' ({where} has "
                                f"{', '.join(_fields(target)) if is_dataclass(target) else 'no fields'})")
        chain.append(getattr(target, name))
    old = chain[-1]
    if is_dataclass(old):
        raise VoxsplatError(f"--set {assignment}: '{key}' is a section; set one of its fields, "
                            f"e.g. {key}.{_fields(old)[0]}=...")
    new = _typed(old, value, assignment, key)
    hint = get_type_hints(type(chain[-2]))[parts[-1]]
    if get_origin(hint) is Literal and new not in get_args(hint):
        raise VoxsplatError(f"--set {assignment}: {key} takes one of "
                            f"{', '.join(map(str, get_args(hint)))}")
    for target, name in zip(reversed(chain[:-1]), reversed(parts)):
        new = replace(target, **{name: new})
    return new


def override(cfg, assignment: str):
    """`cfg` (a `TrainConfig`) with one ``section.field=value`` (or ``field=value``) applied;
    `downscale` is refused: --downscale resizes the images, which the record follows."""
    if assigned_key(assignment) == "downscale":
        raise VoxsplatError(f"--set {assignment}: give --downscale instead (it resizes the "
                            f"images; the config only records the factor)")
    return set_field(cfg, assignment)


def steps_note(overrides: Sequence[str]) -> Optional[str]:
    """A note where `--set optim.steps=N` changes the step count alone: the schedules
    (densification, voxel growth, SH degree, checkpoints) keep the preset's step numbers,
    which `--steps N` would rescale with it."""
    for assignment in overrides:
        if assigned_key(assignment) == "optim.steps":
            return (f"--set {assignment.strip()} changes the step count only: densification and "
                    f"the other schedules keep the preset's step numbers (--steps "
                    f"{assignment.split('=', 1)[1].strip()} rescales them with it)")
    return None
