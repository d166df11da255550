"""Training: the teaching case library (de-identified registry cases with images, labels, the expert
plan and the outcome) and the scoring of a trainee's plan against the expert plan and the ground
truth, every point lost explained.

May import core, io, physics, plan, verify, seeds and registry; web and report build on it.
"""

__all__: list[str] = []
