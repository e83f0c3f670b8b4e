"""Per-step schedules of the KL weight and the Gumbel-softmax temperature.

Both are plain functions of the global step (0-based) and the total number
of steps of the stage, so a resumed run continues the same curve.
"""

from __future__ import annotations

from hybrid_dialogue.training.config import GumbelTemperature, KlAnnealing


def kl_weight(step: int, total_steps: int, annealing: KlAnnealing) -> float:
    """Return the KL weight at `step` of `total_steps`.

    `linear`: 0 at step 0, rising to `annealing.weight` at
    `warmup_fraction * total_steps`, then constant. `cyclical`: the same
    rise within each of `cycles` equal cycles. `constant`: always
    `annealing.weight`.
    """
    if annealing.schedule == "constant":
        return annealing.weight
    total_steps = max(total_steps, 1)

    if annealing.schedule == "linear":
        progress = step / total_steps
    else:
        cycle_length = total_steps / annealing.cycles
        progress = (step % cycle_length) / cycle_length

    ramp = min(progress / annealing.warmup_fraction, 1.0)
    return annealing.weight * ramp


def gumbel_temperature(step: int, total_steps: int, temperature: GumbelTemperature) -> float:
    """Return the temperature at `step`: geometric from `start` (step 0) to `end` (last step)."""
    if total_steps <= 1:
        return temperature.end
    progress = min(step / (total_steps - 1), 1.0)
    return temperature.start * (temperature.end / temperature.start) ** progress
