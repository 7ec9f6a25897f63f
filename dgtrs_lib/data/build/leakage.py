"""Leakage check: training images that are (near-)copies of an evaluation image, by perceptual hash.

Remote-sensing corpora reuse the same source images: UCM, RSICD, RSITMD, AID, RESISC45 and many
captioned sets draw on the same scenes, often re-tiled or re-encoded, so a training set built from
"any imagery" can hold the test images of the benchmarks it is scored on. Before a built set is
used, every training image is compared with every evaluation set the book uses that is present
locally (the embedded ``sentinel`` patches and ``syndg`` test split; RSICD/RSITMD/UCM in the
Karpathy layout, AID/RESISC45/EuroSAT as class folders, AIR-SLT, or any image folder -- the spec
forms of ``dgtrs_lib.evaluation.datasets``, read here with the data layer's own loaders).

The hash is the DCT perceptual hash (pHash; Zauner 2010, "Implementation and benchmarking of
perceptual image hash functions"), computed exactly as the ``imagehash`` package's ``phash``
(github.com/JohannesBuchner/imagehash, BSD-2): grey levels (ITU-R 601-2 luma, PIL ``convert("L")``),
resized to 32x32 with Lanczos, the 2-D DCT-II (``scipy.fft.dct`` over rows then columns), its 8x8
lowest frequencies, each bit = coefficient > their median: 64 bits. Two images are near copies
when their hashes differ in at most ``max_distance`` bits (default 6 of 64) AND -- because almost
featureless tiles (open water, a bare field) all hash alike while being different pictures -- their
32x32 grey thumbnails differ by at most ``max_rmse`` (default 0.03 on a 0-1 scale, RMS). A copy
re-encoded as JPEG or resized passes both tests; two tiles of open sea taken kilometres apart pass the
first and usually fail the second, and a flat tile that passes both is reported as what it is: the
same picture, for all a model can tell. Comparisons are vectorised (XOR + bit count over all
pairs, in blocks).

Taught in: Build your own dual-granularity dataset: the DGTRSD recipe as a tool (notebooks/10-build-your-own-dataset.ipynb)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dgtrs_lib.errors import UsageError, file_not_found

HASH_SIZE, HIGHFREQ = 8, 4
MAX_DISTANCE, MAX_RMSE = 6, 0.03
EVAL_FORMS = ("sentinel", "syndg[:N]", "karpathy:NAME:JSON:IMAGES", "folder:NAME:ROOT", "airslt:NAME:ROOT",
              "images:NAME:ROOT")
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def thumbnail(image, size: int = HASH_SIZE * HIGHFREQ) -> np.ndarray:
    """The 32x32 grey thumbnail (float32, 0-1) the hash is computed from."""
    from PIL import Image

    grey = image.convert("L").resize((size, size), Image.LANCZOS)
    return np.asarray(grey, dtype=np.float32) / 255.0


def phash_bits(thumb: np.ndarray) -> np.ndarray:
    """The 64 pHash bits (bool) of a 32x32 thumbnail (imagehash.phash's computation)."""
    from scipy.fft import dct

    coeffs = dct(dct(thumb * 255.0, axis=0), axis=1)  # imagehash: scipy.fftpack.dct, axis 0 then 1
    low = coeffs[:HASH_SIZE, :HASH_SIZE]
    return (low > np.median(low)).reshape(-1)


def phash(image) -> int:
    """pHash of a PIL image as a 64-bit integer (bit order as ``str(imagehash.phash(image))``)."""
    bits = phash_bits(thumbnail(image))
    return int("".join("1" if b else "0" for b in bits), 2)


@dataclass
class HashIndex:
    """Packed hashes (``[N, 8]`` uint8), thumbnails (``[N, 32, 32]`` float16) and names of images."""

    bits: np.ndarray = field(default_factory=lambda: np.zeros((0, 8), np.uint8))
    thumbs: np.ndarray = field(default_factory=lambda: np.zeros((0, 32, 32), np.float16))
    names: list[str] = field(default_factory=list)   # "<set>/<image id>"

    def __len__(self) -> int:
        return len(self.names)

    def add(self, images, names) -> "HashIndex":
        thumbs = [thumbnail(im) for im in images]
        if not thumbs:
            return self
        bits = np.packbits(np.stack([phash_bits(t) for t in thumbs]), axis=1)
        self.bits = np.concatenate([self.bits, bits])
        self.thumbs = np.concatenate([self.thumbs, np.stack(thumbs).astype(np.float16)])
        self.names += [str(n) for n in names]
        return self

    def sets(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.names:
            out[n.split("/", 1)[0]] = out.get(n.split("/", 1)[0], 0) + 1
        return out


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[len(a), len(b)]`` Hamming distances of packed hashes."""
    return _POPCOUNT[np.bitwise_xor(a[:, None, :], b[None, :, :])].sum(-1, dtype=np.int32)


def find_matches(query: HashIndex, index: HashIndex, *, max_distance: int = MAX_DISTANCE,
                 max_rmse: float = MAX_RMSE, block: int = 512) -> list[dict | None]:
    """For each query image, its closest near copy in ``index`` (``{"match", "distance", "rmse"}``)
    or None (module doc for the two tests)."""
    out: list[dict | None] = [None] * len(query)
    if not len(index) or not len(query):
        return out
    for s in range(0, len(query), block):
        d = hamming(query.bits[s:s + block], index.bits)
        for qi, ji in zip(*np.nonzero(d <= max_distance)):
            q = s + int(qi)
            rmse = float(np.sqrt(np.mean((query.thumbs[q].astype(np.float32)
                                          - index.thumbs[ji].astype(np.float32)) ** 2)))
            if rmse <= max_rmse and (out[q] is None or rmse < out[q]["rmse"]):
                out[q] = {"match": index.names[ji], "distance": int(d[qi, ji]), "rmse": round(rmse, 5)}
    return out


# ----------------------------------------------------------------------------- evaluation sets
def _eval_images(spec: str, profile=None):
    """(set name, iterable of (image id, PIL image)) of one evaluation spec (``EVAL_FORMS``)."""
    from PIL import Image

    parts = str(spec).split(":")
    kind = parts[0]
    if kind == "sentinel" and len(parts) == 1:
        from dgtrs_lib.data.sentinel import sentinel_patches

        ds = sentinel_patches()
        return "Sentinel-2", ((ds[i]["image_id"], ds[i]["image"]) for i in range(len(ds)))
    if kind == "syndg" and len(parts) <= 2:
        from dgtrs_lib.data.syndg.sample import generate_sample
        from dgtrs_lib.profiles import get_profile

        n = int(parts[1]) if len(parts) == 2 else get_profile(profile).syndg_sizes["test"]
        return "SynDG-RS", ((s["image_id"], Image.fromarray(s["image"]))
                            for s in (generate_sample(0, "test", i) for i in range(n)))
    if len(parts) < 3 or any(not p for p in parts[1:]):
        raise UsageError(f"evaluation set {spec!r}: expected one of {', '.join(EVAL_FORMS)}")
    name, root = parts[1], Path(parts[2])
    if not root.exists():
        raise UsageError(f"evaluation set {spec!r}: " + file_not_found(root))
    if kind == "karpathy" and len(parts) == 4:
        from dgtrs_lib.data.karpathy import load_karpathy

        ds = load_karpathy(parts[2], parts[3], split=None)
        return name, ((ds[i]["image_id"], ds[i]["image"]) for i in range(len(ds)))
    if kind == "folder" and len(parts) == 3:
        from dgtrs_lib.data.classfolder import load_class_folder

        ds = load_class_folder(root)
        return name, ((ds[i]["image_id"], ds[i]["image"]) for i in range(len(ds)))
    if kind == "airslt" and len(parts) == 3:
        from dgtrs_lib.data.airslt import load_airslt

        samples = load_airslt(root)
        paths = dict.fromkeys(s.image_path for s in samples)
        return name, ((Path(p).name, Image.open(p)) for p in paths)
    if kind == "images" and len(parts) == 3:
        from dgtrs_lib.data.build.inputs import folder_items

        return name, ((it.image_id, it.image) for it in folder_items(root))
    raise UsageError(f"evaluation set {spec!r}: expected one of {', '.join(EVAL_FORMS)}")


def eval_index(specs, profile=None, progress: bool = False) -> HashIndex:
    """One :class:`HashIndex` over every image of the evaluation sets ``specs``."""
    from tqdm.auto import tqdm

    index = HashIndex()
    for spec in specs:
        name, pairs = _eval_images(spec, profile)
        ids, images = [], []
        for image_id, image in tqdm(pairs, desc=f"hashing {name}", disable=not progress, leave=False):
            ids.append(f"{name}/{image_id}")
            images.append(image.convert("RGB"))
            if len(images) == 256:
                index.add(images, ids)
                ids, images = [], []
        index.add(images, ids)
    return index


def planted_copies(spec: str = "sentinel", n: int = 1, *, jpeg_quality: int = 90, profile=None) -> list:
    """``n`` images of an evaluation set, re-encoded as JPEG, as build inputs (``Item`` s named
    ``planted-<set>-<id>``, no metadata): the known leaks a check must find."""
    import io

    from PIL import Image

    from dgtrs_lib.data.build.inputs import Item

    name, pairs = _eval_images(spec, profile)
    out = []
    for image_id, image in pairs:
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="JPEG", quality=jpeg_quality)
        data = buf.getvalue()
        out.append(Item(f"planted-{name}-{image_id}", (lambda d=data: Image.open(io.BytesIO(d)).convert("RGB")),
                        {"planted_from": f"{name}/{image_id}"}, ""))
        if len(out) == n:
            break
    return out
