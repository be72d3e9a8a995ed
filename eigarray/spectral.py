"""Spectral tools for deep learning: Hessian eigenpairs and spectral densities.

A public submodule (import it as ``import eigarray.spectral`` or
``from eigarray import spectral``; ``import eigarray`` alone does not load it):

* :func:`hessian_eigsh`: a few extreme eigenpairs of a Hessian seen only
  through a Hessian-vector-product callable (thick-restart Lanczos, or
  subspace iteration);
* :func:`spectral_density`: the whole spectral density, smoothed, by
  stochastic Lanczos quadrature, with moment and ``trace(f(A))`` estimates.

Both take the products in whatever namespace the caller's autodiff works in
(torch, JAX, NumPy, ...); nothing of those frameworks is imported here.
"""

from __future__ import annotations

from ._spectral import SpectralDensity, hessian_eigsh, rademacher_probes, spectral_density

__all__ = ["SpectralDensity", "hessian_eigsh", "rademacher_probes", "spectral_density"]
