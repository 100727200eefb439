"""Typed YAML configs: one loader for every task.

A task describes its config as nested dataclasses; `load_config(path_or_dict, Schema)` checks the
YAML against it and returns an instance. Every mistake is a `ConfigError` that names the file and the
key's full path (``model.encoder.d_modle``): unknown keys get the closest valid key and the list of
valid ones, wrong types name the expected type and the value found, missing required keys are named.

Supported field types: bool, int, float (ints and numeric strings such as ``6e-4``, which YAML 1.1
reads as a string, are accepted), str, Optional[X], list[X], dict[str, X], Literal[...] and nested
dataclasses.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file (or dict) does not match its schema."""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(tp))
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in typing.get_args(tp))}]"
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, where: str, err) -> Any:
    """Check `value` against the annotation `tp`; return the converted value."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    def wrong():
        shown = repr(value) if len(repr(value)) < 80 else repr(value)[:77] + "..."
        raise err(f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {shown}")

    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, where, err)
            except ConfigError:
                pass
        wrong()
    if origin is Literal:
        if not any(value == a and type(value) is type(a) for a in args):
            wrong()
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            wrong()
        return [_convert(args[0] if args else Any, v, f"{where}[{i}]", err) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            wrong()
        vt = args[1] if args else Any
        return {str(k): _convert(vt, v, f"{where}.{k}", err) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            wrong()
        return _build(tp, value, where, err)
    if tp is bool:
        if not isinstance(value, bool):
            wrong()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            wrong()
        return value
    if tp is float:
        if isinstance(value, bool):
            wrong()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                wrong()
        wrong()
    if tp is str:
        if not isinstance(value, str):
            wrong()
        return value
    if isinstance(tp, type):
        if not isinstance(value, tp):
            wrong()
        return value
    raise TypeError(f"config schema: unsupported field type {tp!r} at {where}")


def _build(cls: type, data: dict, prefix: str, err) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            path = f"{prefix}.{key}" if prefix else str(key)
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise err(f"{path}: unknown key '{key}'{hint} (valid keys here: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        path = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], path, err)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise err(f"{path}: missing required key '{name}' ({_type_name(hints[name])})")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:  # __post_init__ checks
        raise err(f"{prefix or 'config'}: {e}") from None


def load_config(source: str | os.PathLike | dict, schema: type[T]) -> T:
    """Load a YAML file (or an already parsed dict) into the dataclass `schema`, strictly."""
    if isinstance(source, dict):
        origin, data = "<dict>", source
    else:
        origin = str(source)
        try:
            with open(source, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except FileNotFoundError:
            raise ConfigError(f"{origin}: config file not found") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{origin}: not valid YAML: {e}") from None
        if data is None:
            data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping, got {type(data).__name__}")

    def err(msg: str) -> ConfigError:
        return ConfigError(f"{origin}: {msg}")

    return _build(schema, data, "", err)


def config_to_dict(cfg: Any) -> dict:
    """The plain-dict form of a loaded config (for saving next to a checkpoint)."""
    return dataclasses.asdict(cfg)


def resolve_shipped(name: str | os.PathLike, conf_dir: Path) -> Path:
    """A YAML path, or the name of a config shipped in `conf_dir` (with or without `.yaml`)."""
    path = Path(name)
    if path.exists():
        return path
    shipped = conf_dir / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if shipped.exists():
        return shipped
    known = ", ".join(sorted(p.stem for p in conf_dir.glob("*.yaml")))
    raise ConfigError(f"{name}: no such config file, and not a shipped config (shipped: {known})")


def read_config_file(path: str | os.PathLike, conf_dir: Path, _seen: tuple[Path, ...] = ()) -> dict:
    """A YAML config as a dict, with its `base:` resolved: `base: NAME` (a path relative to this file, or a
    shipped config's name) is read first and this file's keys are merged over it, section by section.
    A recipe's config thus names a shipped one and states only what it changes."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return data
    local = path.parent / str(base)
    base_path = local if local.is_file() else resolve_shipped(str(base), conf_dir)
    if base_path.resolve() in _seen:
        raise ConfigError(f"{path}: base: {base} includes itself")
    merged = read_config_file(base_path, conf_dir, _seen + (path.resolve(),))
    _merge_into(merged, data)
    return merged


def _merge_into(base: dict, over: dict) -> None:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge_into(base[key], value)
        else:
            base[key] = value


def load_with_overrides(source: str | os.PathLike | dict, schema: type[T], conf_dir: Path,
                        overrides: list[str] = ()) -> T:
    """A config from a YAML path / shipped name / dict, with `key.path=value` overrides (values in YAML)."""
    if isinstance(source, dict):
        return load_config(apply_overrides(source, overrides), schema)
    path = resolve_shipped(source, conf_dir)
    data = read_config_file(path, conf_dir)
    try:
        return load_config(apply_overrides(data, overrides), schema)
    except ConfigError as e:  # errors name the file, not "<dict>"
        raise ConfigError(str(e).replace("<dict>", str(path), 1)) from None


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key.path=value (e.g. trainer.max_steps=100)")
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: '{p}' is not a section")
        node[leaf] = yaml.safe_load(value)
    return data
