"""Integrators for gradient flow and gradient descent on deep linear networks."""
from .api import DIAGNOSTICS, METHODS, gradient_descent, gradient_flow
from .solvers import Dopri5, Gauss
from .trajectory import DivergenceError, MaxStepsError, MaxStepsWarning, Status, Trajectory

__all__ = [
    "DIAGNOSTICS",
    "METHODS",
    "Dopri5",
    "DivergenceError",
    "Gauss",
    "MaxStepsError",
    "MaxStepsWarning",
    "Status",
    "Trajectory",
    "gradient_descent",
    "gradient_flow",
]
