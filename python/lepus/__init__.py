"""lepus: binned profile-likelihood fits with an exact-Hessian C++ engine.

    import lepus
    model = lepus.read("fit_input.hdf5")          # rabbit's tensor layout
    result = model.fit()                           # FitResult: names, values, errors, covariance, ...
    impacts = model.impacts(result)                # nominal, grouped and global impacts
    model.nll(x), model.gradient(x), model.hessian(x)   # for iminuit, scipy, ...

Models can also be built from numpy arrays (Model.from_arrays). Fits, scans and toys release the
GIL and stop on Ctrl-C. Errors: lepus.InputError (an OSError and a ValueError) for unreadable or
invalid inputs, ValueError for bad arguments, lepus.NumericalError when a result needs a fit that
did not give an accurate covariance. See docs/python.md.
"""

from ._lepus import (  # noqa: F401  (the compiled extension)
    FitResult,
    InputError,
    Likelihood,
    Model,
    NumericalError,
    __version__,
    read,
)

__all__ = ["read", "Model", "Likelihood", "FitResult", "InputError", "NumericalError", "__version__"]
