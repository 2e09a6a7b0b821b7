"""linflow: gradient flow on multi-layer linear models, after Min, Vidal & Mallada (ICML 2023).

>>> import linflow as lf
>>> lf.product, lf.imbalance, lf.gradient_flow  # doctest: +ELLIPSIS
(<function product at ...>, <function imbalance at ...>, <function gradient_flow at ...>)

Layers
------
engine
    :mod:`~linflow.backend`, :mod:`~linflow.network`, :mod:`~linflow.losses`,
    :mod:`~linflow.flow`.
theory
    :mod:`~linflow.init`, :mod:`~linflow.bounds`, :mod:`~linflow.closed_form`.
presentation
    :mod:`~linflow.plots`, :mod:`~linflow.widgets`.
experiments
    :mod:`~linflow.sweep` (sweeps, results stores, Dask), :mod:`~linflow.rates` (measured
    rates), :mod:`~linflow.stats` (Wilson intervals, crossings, fits).
"""
from . import losses
from .backend import BackendError, asarray, get_backend, namespace, set_backend, to_numpy
from .flow import (
    DivergenceError,
    MaxStepsError,
    MaxStepsWarning,
    Status,
    Trajectory,
    gradient_descent,
    gradient_flow,
)
from .network import (
    T_apply,
    T_matrix,
    energy,
    imbalance,
    lambda_max_bound,
    lambda_min,
    layer_gradients,
    prefix_products,
    product,
    sigma_min,
    singular_values,
    suffix_products,
    value_and_gradients,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "DivergenceError",
    "MaxStepsError",
    "MaxStepsWarning",
    "Status",
    "T_apply",
    "T_matrix",
    "Trajectory",
    "asarray",
    "energy",
    "get_backend",
    "gradient_descent",
    "gradient_flow",
    "imbalance",
    "lambda_max_bound",
    "lambda_min",
    "layer_gradients",
    "losses",
    "namespace",
    "prefix_products",
    "product",
    "set_backend",
    "sigma_min",
    "singular_values",
    "suffix_products",
    "to_numpy",
    "value_and_gradients",
]


def __getattr__(name):
    # theory and presentation modules load on first use
    import importlib

    if name in ("init", "bounds", "closed_form", "figure1", "plots", "widgets", "sweep", "stats", "rates",
                "distributed"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'linflow' has no attribute {name!r}")
