"""Pipeline arguments from the command line: `--param NAME=VALUE` and `--set SECTION.KEY=VALUE`."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from hybrid_dialogue.kubeflow import KubeflowError

# Pipeline parameter types in the compiled YAML (`parameterType`) and the
# Python types a run's arguments must have.
_PARAMETER_TYPES: dict[str, type] = {
    "STRING": str,
    "NUMBER_INTEGER": int,
    "NUMBER_DOUBLE": float,
    "BOOLEAN": bool,
}


def split_assignment(assignment: str, option: str) -> tuple[str, str]:
    """Split `NAME=VALUE` at the first '=', rejecting a missing '=' or an empty name."""
    name, separator, value = assignment.partition("=")
    if not separator or not name.strip():
        raise KubeflowError(f"{option} {assignment!r} is invalid: expected NAME=VALUE")
    return name.strip(), value


def pipeline_inputs(package: Path) -> dict[str, dict[str, Any]]:
    """Return the compiled pipeline's parameters: name -> `{"parameterType", "defaultValue", "isOptional"}`."""
    try:
        # A pipeline with Kubernetes settings compiles to two documents: the
        # pipeline spec, then the platform spec.
        spec = next(yaml.safe_load_all(package.read_text(encoding="utf-8")), None)
    except yaml.YAMLError as error:
        raise KubeflowError(f"{package} is not a compiled pipeline YAML: {error}") from None
    if not isinstance(spec, dict) or "root" not in spec:
        raise KubeflowError(f"{package} is not a compiled pipeline YAML: it has no `root` section")
    return spec["root"].get("inputDefinitions", {}).get("parameters", {})


def typed_arguments(package: Path, assignments: Iterable[str]) -> dict[str, Any]:
    """Turn `--param NAME=VALUE` strings into typed run arguments for the compiled pipeline.

    Unknown names and values that do not parse as the parameter's type raise
    `KubeflowError`, as do required parameters (those without a default) that
    are missing, so that a mistake fails here rather than in the cluster.
    """
    inputs = pipeline_inputs(package)
    arguments: dict[str, Any] = {}
    for assignment in assignments:
        name, text = split_assignment(assignment, "--param")
        if name not in inputs:
            raise KubeflowError(f"--param {name}: unknown pipeline parameter. Known parameters: {', '.join(sorted(inputs))}.")
        arguments[name] = _parse_value(name, text, inputs[name]["parameterType"])

    missing = [name for name, spec in inputs.items() if name not in arguments and not _has_default(spec)]
    if missing:
        raise KubeflowError(f"missing required pipeline parameter(s): {', '.join(sorted(missing))}. Pass --param NAME=VALUE.")
    return arguments


def default_argument(package: Path, name: str) -> Any:
    """Return the compiled default of pipeline parameter `name`."""
    spec = pipeline_inputs(package).get(name)
    if spec is None or not _has_default(spec):
        raise KubeflowError(f"the compiled pipeline {package} has no default for parameter {name}. Recompile it.")
    return spec["defaultValue"]


def override_params(params: Mapping[str, Any], assignments: Iterable[str]) -> dict[str, Any]:
    """Return a copy of the `params.yaml` sections with `SECTION.KEY=VALUE` assignments applied.

    Values are read as YAML scalars, so `3`, `0.5`, `true` and `[1, 2]` keep
    their types. The stage configs validate the result when the tasks run.
    """
    result = copy.deepcopy(dict(params))
    for assignment in assignments:
        dotted, text = split_assignment(assignment, "--set")
        if "." not in dotted:
            raise KubeflowError(f"--set {dotted}: expected SECTION.KEY=VALUE, for example vae_pretrain.seed=7")
        section, *parents, leaf = dotted.split(".")
        target = result
        for key in (section, *parents):
            if target.get(key) is None:
                target[key] = {}
            target = target[key]
            if not isinstance(target, dict):
                raise KubeflowError(f"--set {dotted}: {key} is not a mapping in params.yaml")
        try:
            target[leaf] = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise KubeflowError(f"--set {dotted}: value {text!r} is not a YAML scalar or list ({error})") from None
    return result


def params_to_json(params: Mapping[str, Any]) -> str:
    """Serialize the parameter sections as the `params_json` pipeline argument (sorted keys, stable text)."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def _has_default(spec: Mapping[str, Any]) -> bool:
    return "defaultValue" in spec or bool(spec.get("isOptional"))


def _parse_value(name: str, text: str, parameter_type: str) -> Any:
    expected = _PARAMETER_TYPES.get(parameter_type, str)
    if expected is str:
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not expected:
        raise KubeflowError(f"--param {name}={text!r} is invalid: expected {expected.__name__} ({parameter_type})")
    return value


def check_pipeline_arguments(arguments: Mapping[str, Any], spelling: Mapping[str, str] | None = None) -> None:
    """Reject a `preset` that `params.yaml` does not define and an `accelerator_limit` that is not a count.

    These two would otherwise fail only once a task starts in the cluster.
    `spelling` maps an argument name to the option that set it in error
    messages (default `--param NAME`).
    """
    from hybrid_dialogue.models.config import ModelPresets

    def option(name: str) -> str:
        return (spelling or {}).get(name, f"--param {name}")

    presets = sorted(ModelPresets.model_fields)
    preset = arguments.get("preset")
    if preset is not None and preset not in presets:
        raise KubeflowError(f"{option('preset')}={preset!r} is invalid: expected one of {', '.join(presets)}")
    limit = arguments.get("accelerator_limit")
    if limit is not None and re.fullmatch(r"[0-9]+", str(limit)) is None:
        raise KubeflowError(
            f"{option('accelerator_limit')}={limit!r} is invalid: expected a non-negative whole number of accelerators"
        )
