"""The end-to-end demo: one synthetic patient through every stage OpenIR has.

Stages are registered in :mod:`openir.demo.stages`; each later capability adds one stage
(plan, simulate, monitor, verify, dose, registry) without touching the runner.
"""

from .runner import DemoContext, run_demo
from .stages import STAGES, Stage

__all__ = ["STAGES", "DemoContext", "Stage", "run_demo"]
