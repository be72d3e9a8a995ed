"""Sphinx configuration for eigarray's documentation.

Build (warnings are errors; no network needed)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Run the examples on these pages as doctests (they use torch, JAX, Dask and
scikit-learn too: install ``.[test,docs]``)::

    python -m sphinx -W --keep-going -b doctest docs docs/_build/doctest
"""

from __future__ import annotations

import os
import sys

# Document the checkout these pages belong to, installed or not.
sys.path.insert(0, os.path.abspath(".."))

import eigarray  # noqa: E402

project = "eigarray"
author = "the eigarray developers"
copyright = "the eigarray developers"
release = eigarray.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "numpydoc",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
default_role = "code"

# -- autodoc / autosummary / numpydoc --------------------------------------
# api.rst lists every public name in autosummary tables *without* :toctree:,
# so no stub pages are generated into the source tree; the entries link to
# the autodoc descriptions on the same page.
autosummary_generate = False
autodoc_typehints = "none"          # signatures as written; types live in the docstrings
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # classes are documented member by member in api.rst
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- intersphinx -------------------------------------------------------------
# CI has no network access beyond package registries, so no remote inventory
# is fetched: references to numpy/scipy/torch/jax stay plain text.
intersphinx_mapping: dict = {}

# -- doctest -------------------------------------------------------------------
doctest_global_setup = """
import numpy as np
import eigarray
"""

# -- HTML ----------------------------------------------------------------------
html_theme = "alabaster"
html_theme_options = {
    "description": "Eigensolvers for the array you already have",
    "fixed_sidebar": True,
}
html_static_path: list = []
html_show_sourcelink = False
