"""dgtrs_lib: the thin library behind the dgtrs-book reproduction of DGTRS-CLIP (arXiv:2503.19311).

Top-level names are the long-text model API (see CONTRIBUTING.md for every contract); data,
training and evaluation live in their submodules (``dgtrs_lib.data``, ``dgtrs_lib.losses``,
``dgtrs_lib.curriculum``, ``dgtrs_lib.train``, ``dgtrs_lib.metrics``, ``dgtrs_lib.evaluate``...).
"""
__version__ = "0.1.0"
