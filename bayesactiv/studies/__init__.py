"""Studies built from the stages below: the memorization study that ``bayesactiv demo`` runs."""

from bayesactiv.studies.memorization import DemoPlan, run_demo

__all__ = ["DemoPlan", "run_demo"]
