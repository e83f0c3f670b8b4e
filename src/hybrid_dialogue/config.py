"""Typed stage configuration read from `params.yaml`.

Every stage owns one top-level section of `params.yaml` and reads it through a
subclass of `StageConfig`. Unknown keys and out-of-range values raise
`ConfigError` with a message that names the key, the value and the allowed
range, so a typo in `params.yaml` fails before any work starts.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
import types
import typing
from typing import Any, TypeVar

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

DEFAULT_PARAMS_PATH = Path("params.yaml")

ConfigT = TypeVar("ConfigT", bound="StageConfig")

logger = logging.getLogger(__name__)


class ConfigError(ValueError):
    """Invalid or missing configuration, with a message that says how to fix it."""


class StageConfig(BaseModel):
    """Base of every stage config: frozen, and strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @field_validator("*", mode="before")
    @classmethod
    def _reject_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads true as 1, so `max_responses: true` would pass as 1.
        if isinstance(value, bool) and info.field_name is not None:
            accepted = _annotation_types(cls.model_fields[info.field_name].annotation)
            if bool not in accepted and accepted & {int, float}:
                raise ValueError("expected a number, not a boolean")
        return value

    def to_flat_dict(self, prefix: str = "") -> dict[str, Any]:
        """Flatten to dotted keys, as MLflow parameters and DVC param names read."""
        return _flatten(self.model_dump(mode="json"), prefix)

    def digest(self) -> str:
        """Return a short, stable hash of the resolved values."""
        encoded = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(encoded).hexdigest()[:12]


def load_params(path: str | Path = DEFAULT_PARAMS_PATH) -> dict[str, Any]:
    """Read the whole parameter file as a dict of sections."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"parameter file not found: {path}. Run from the repository root "
            "or pass --params PATH."
        )
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(params, dict):
        raise ConfigError(f"{path} must contain a mapping of sections, got {type(params).__name__}")
    return params


def load_section(
    config_class: type[ConfigT],
    section: str,
    path: str | Path = DEFAULT_PARAMS_PATH,
    overrides: dict[str, Any] | None = None,
) -> ConfigT:
    """Build `config_class` from one section of the parameter file.

    `overrides` maps keys of that section (dotted for nested keys) to values
    and wins over the file, so that the CLI and tests can change a value
    without editing `params.yaml`.
    """
    params = load_params(path)
    values = params.get(section)
    if section not in params:
        # Not an error: tests and small projects rely on the defaults. The
        # warning catches a misspelled section name, which would otherwise
        # silently train with the defaults.
        logger.warning(
            "%s has no '%s' section, so the stage uses its defaults. Sections found: %s. "
            "Add the section (or fix its name) to set the stage's parameters.",
            path, section, ", ".join(sorted(params)) or "none",
        )
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: section '{section}' must be a mapping, got {values!r}")
    values = _apply_overrides(values, overrides or {})
    return parse_section(config_class, section, values, source=str(path))


def parse_section(
    config_class: type[ConfigT], section: str, values: dict[str, Any], source: str = "params"
) -> ConfigT:
    """Validate a section's values, turning pydantic errors into one `ConfigError`."""
    try:
        return config_class.model_validate(values)
    except ValidationError as error:
        problems = [_describe_error(config_class, section, item) for item in error.errors()]
        raise ConfigError(f"{source}: invalid '{section}' section:\n  " + "\n  ".join(problems)) from None


def _describe_error(config_class: type[StageConfig], section: str, item: dict[str, Any]) -> str:
    location = [str(part) for part in item["loc"]]
    key = ".".join([section, *location])
    value = item.get("input")
    if item["type"] == "extra_forbidden":
        allowed = _allowed_keys(config_class, item["loc"][:-1])
        return f"{key}: unknown key (value {value!r}). Allowed keys: {', '.join(allowed)}."
    if item["type"] == "missing":
        return f"{key}: missing required key."
    allowed_range = _allowed_range(config_class, item["loc"])
    hint = f" Allowed range: {allowed_range}." if allowed_range else ""
    return f"{key} = {value!r} is invalid: {item['msg']}.{hint}"


def _field_for(config_class: type[BaseModel], location: tuple) -> Any:
    """Walk nested models along `location`; return the FieldInfo or None."""
    model: Any = config_class
    field = None
    for part in location:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        model = field.annotation
    return field


def _allowed_keys(config_class: type[BaseModel], location: tuple) -> list[str]:
    model: Any = config_class
    for part in location:
        field = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        model = field.annotation
    return sorted(model.model_fields) if hasattr(model, "model_fields") else []


def _allowed_range(config_class: type[BaseModel], location: tuple) -> str:
    field = _field_for(config_class, location)
    if field is None:
        return ""
    low, high = "", ""
    for constraint in field.metadata:
        if isinstance(constraint, annotated_types.Ge):
            low = f">= {constraint.ge}"
        elif isinstance(constraint, annotated_types.Gt):
            low = f"> {constraint.gt}"
        elif isinstance(constraint, annotated_types.Le):
            high = f"<= {constraint.le}"
        elif isinstance(constraint, annotated_types.Lt):
            high = f"< {constraint.lt}"
    return " and ".join(part for part in (low, high) if part)


def _annotation_types(annotation: Any) -> set[Any]:
    """Return the types a field annotation allows: {int, NoneType} for `int | None`."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return {part for argument in typing.get_args(annotation) for part in _annotation_types(argument)}
    if typing.get_origin(annotation) is typing.Annotated:
        return _annotation_types(typing.get_args(annotation)[0])
    return {annotation}


def _apply_overrides(values: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = json.loads(json.dumps(values))  # deep copy of plain YAML data
    for dotted_key, value in overrides.items():
        target = merged
        *parents, leaf = dotted_key.split(".")
        for depth, parent in enumerate(parents):
            target = target.setdefault(parent, {})
            if not isinstance(target, dict):
                section = ".".join(parents[: depth + 1])
                raise ConfigError(
                    f"cannot set {dotted_key}: {section} is {target!r}, not a section with keys. "
                    f"Set {section} itself, or check the key."
                )
        target[leaf] = value
    return merged


def _flatten(values: dict[str, Any], prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            flat.update(_flatten(value, dotted))
        else:
            flat[dotted] = value
    return flat
