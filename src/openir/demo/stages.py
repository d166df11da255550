"""The demo's stages, in order. A stage is a function of the shared `DemoContext`.

To add a stage: write ``openir/demo/stage_<name>.py`` with a ``run(ctx)`` function that reads what
earlier stages left in ``ctx.results``, writes files under ``ctx.out``, stores its own results and
adds sections to ``ctx.sections`` (HTML fragments for the summary page); then list it below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runner import DemoContext


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    run: Callable[[DemoContext], None]


def _patient(ctx: DemoContext) -> None:
    from .stage_patient import run

    run(ctx)


def _physics(ctx: DemoContext) -> None:
    from .stage_physics import run

    run(ctx)


def _monitor(ctx: DemoContext) -> None:
    from .stage_monitor import run

    run(ctx)


def _plan(ctx: DemoContext) -> None:
    from .stage_plan import run

    run(ctx)


def _navigate(ctx: DemoContext) -> None:
    from .stage_navigate import run

    run(ctx)


def _dose(ctx: DemoContext) -> None:
    from .stage_dose import run

    run(ctx)


def _verify(ctx: DemoContext) -> None:
    from .stage_verify import run

    run(ctx)


def _seeds(ctx: DemoContext) -> None:
    from .stage_seeds import run

    run(ctx)


def _registry(ctx: DemoContext) -> None:
    from .stage_registry import run

    run(ctx)


def _practice(ctx: DemoContext) -> None:
    from .stage_practice import run

    run(ctx)


STAGES: list[Stage] = [
    Stage("patient", "Synthetic patient (CT + label map)", _patient),
    Stage("plan", "Ablation plan (modality, target, multi-probe placement)", _plan),
    Stage("navigate", "Navigation: the plan over OpenIGTLink, live needle guidance", _navigate),
    Stage("physics", "Physics of the plan (heating, cryo ice ball or IRE field)", _physics),
    Stage("monitor", "MR thermometry monitoring (temperature, dose, alerts)", _monitor),
    Stage("dose", "Radiation dose monitoring (RDSR, alerts, DRLs)", _dose),
    Stage("verify", "Ablation verification (registration, minimal margin)", _verify),
    Stage("seeds", "Seed implantation (I-125 TG-43 dose, template, inverse plan)", _seeds),
    Stage("registry", "Multi-centre registry and quality control", _registry),
    Stage("practice", "Standard practice: SOP check, teaching exercise, DRG cost", _practice),
]
