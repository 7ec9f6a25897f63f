"""Every loader on its fixture (tests/fixtures, the published formats) and every bad-input case."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dgtrs_lib.data.airslt import load_airslt, write_airslt
from dgtrs_lib.data.classfolder import load_class_folder, normalize_class_name, remoteclip_80_20, to_classification
from dgtrs_lib.data.common import DataFormatError
from dgtrs_lib.data.dual import (
    first_sentence,
    load_dual_hf,
    load_dual_imagefolder,
    load_dual_parquet,
    load_sharegpt4v,
    to_dual,
)
from dgtrs_lib.data.karpathy import load_karpathy, load_rsicd_parquet, rsicd_hf_to_retrieval

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture
def copy(tmp_path):
    def _copy(name):
        dst = tmp_path / name
        shutil.copytree(FIX / name, dst)
        return dst
    return _copy


DUAL = ["image_id", "image", "short_caption", "long_caption", "scene", "meta"]


# ---------------------------------------------------------------- dual granularity

def test_dual_imagefolder_fixture():
    ds = load_dual_imagefolder(FIX / "dual_imagefolder")
    assert ds.column_names == DUAL and len(ds) == 3
    assert ds[0]["short_caption"] == "A harbor with boats." and ds[0]["scene"] == "harbor"
    assert ds[0]["image"].mode == "RGB" and ds[0]["image"].size == (16, 16)
    # c.png has no short caption: derived from the first sentence, and flagged
    assert ds[2]["short_caption"] == "A river crosses farmland"
    assert json.loads(ds[2]["meta"])["short_caption_derived"] == "first_sentence"
    assert "short_caption_derived" not in json.loads(ds[0]["meta"])
    assert "1 short captions derived" in ds.info.description


def test_dual_imagefolder_bad_inputs(copy):
    root = copy("dual_imagefolder")
    (root / "b.png").unlink()
    with pytest.raises(DataFormatError, match=r"line 2 \(b.png\): image file not found"):
        load_dual_imagefolder(root)
    ds = load_dual_imagefolder(root, on_error="skip")
    assert len(ds) == 2 and "1 skipped" in ds.info.description and "b.png" in ds.info.description
    (root / "b.png").write_bytes(b"not a png at all")
    with pytest.raises(DataFormatError, match=r"b.png\): not a readable image"):
        load_dual_imagefolder(root)
    # empty caption
    lines = (root / "metadata.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    rec["long_caption"] = "   "
    (root / "metadata.jsonl").write_text("\n".join([json.dumps(rec)] + lines[1:]))
    with pytest.raises(DataFormatError, match=r"line 1 \(a.png\): field 'long_caption' is empty"):
        load_dual_imagefolder(root)
    # wrong schema
    (root / "metadata.jsonl").write_text(json.dumps({"file": "a.png", "text": "x"}) + "\n")
    with pytest.raises(DataFormatError, match="expected an object with 'file_name' and 'long_caption'"):
        load_dual_imagefolder(root)
    (root / "metadata.jsonl").write_text("{not json\n")
    with pytest.raises(DataFormatError, match="line 1: not valid JSON"):
        load_dual_imagefolder(root)
    (root / "metadata.jsonl").unlink()
    with pytest.raises(DataFormatError, match="metadata.jsonl: not found"):
        load_dual_imagefolder(root)
    with pytest.raises(ValueError, match="on_error"):
        load_dual_imagefolder(root, on_error="ignore")


def test_non_rgb_images_converted_or_refused(copy):
    root = copy("dual_imagefolder")
    Image.new("L", (16, 16), 128).save(root / "a.png")
    Image.new("RGBA", (16, 16), (255, 0, 0, 0)).save(root / "b.png")  # fully transparent -> black
    ds = load_dual_imagefolder(root)
    assert ds[0]["image"].mode == "RGB" and ds[0]["image"].getpixel((0, 0)) == (128, 128, 128)
    assert ds[1]["image"].getpixel((0, 0)) == (0, 0, 0)
    assert "2 converted to RGB" in ds.info.description
    Image.fromarray(np.full((16, 16), 4000, np.uint16)).save(root / "a.png")  # 16-bit
    with pytest.raises(DataFormatError, match=r"a.png\): image mode 'I;16' .*cannot be converted"):
        load_dual_imagefolder(root)


def test_dual_parquet_and_hf_folder():
    ds = load_dual_parquet(FIX / "dual_parquet" / "train-00000-of-00001.parquet", id_column="id")
    assert ds.column_names == DUAL and ds["image_id"] == ["p0", "p1", "p2"]
    assert ds[1]["short_caption"] == "A forest." and ds[1]["image"].size == (16, 16)
    hf = load_dual_hf(str(FIX / "dual_parquet"), split="train", id_column="id")
    assert hf["long_caption"] == ds["long_caption"]
    # long-only source: a 'caption' column, short derived as Long-CLIP does
    lo = load_dual_hf(str(FIX / "long_only_hf"), split="train", long_column="caption", short_column=None)
    assert lo["short_caption"] == ["A parking lot full of cars", "Farmland with fields"]
    assert all(json.loads(m)["short_caption_derived"] == "first_sentence" for m in lo["meta"])


def test_dual_parquet_bad_inputs(tmp_path):
    with pytest.raises(DataFormatError, match="parquet file not found"):
        load_dual_parquet(tmp_path / "missing.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(DataFormatError, match="not a readable parquet file"):
        load_dual_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataFormatError, match="long_column='text' is not a column"):
        load_dual_parquet(FIX / "dual_parquet" / "train-00000-of-00001.parquet", long_column="text")
    import datasets

    ds = datasets.Dataset.from_dict({"image": [{"bytes": b"xx", "path": None}], "long_caption": ["A b. C d."]},
                                    features=datasets.Features({"image": datasets.Image(),
                                                                "long_caption": datasets.Value("string")}))
    with pytest.raises(DataFormatError, match="row 0: not a readable image"):
        to_dual(ds)
    with pytest.raises(DataFormatError, match=r"every item was skipped \(1: row 0"):   # issue #14: never 0 rows
        to_dual(ds, on_error="skip")
    # verify_images=False keeps the bytes unchecked (documented: decoding errors surface later)
    assert to_dual(ds, verify_images=False).cast_column("image", datasets.Image(decode=False))[0]["image"]["bytes"] == b"xx"


def test_sharegpt4v_json(copy):
    ds = load_sharegpt4v(FIX / "sharegpt4v" / "share-captioner_sample.json", FIX / "sharegpt4v")
    assert ds["image_id"] == ["000001", "sa_1"]
    assert ds[0]["long_caption"] == "The image shows a kitchen. A wooden table stands in the middle. Two chairs are beside it."
    assert ds[0]["short_caption"] == "The image shows a kitchen"
    root = copy("sharegpt4v")
    j = root / "share-captioner_sample.json"
    items = json.loads(j.read_text())
    items[1]["conversations"] = items[1]["conversations"][:1]
    j.write_text(json.dumps(items))
    with pytest.raises(DataFormatError, match=r"item 1: 'conversations' must hold at least 2 turns"):
        load_sharegpt4v(j, root)


def test_first_sentence_rule():
    assert first_sentence("A b c. D e. F") == "A b c"
    assert first_sentence("No period here") == "No period here"
    assert first_sentence("Dr.Smith's farm. Fields.") == "Dr.Smith's farm"  # only '. ' splits


# ---------------------------------------------------------------- retrieval

def test_karpathy_fixture():
    root = FIX / "karpathy"
    ds = load_karpathy(root / "dataset_rsicd.json", root / "RSICD_images")
    assert ds.column_names == ["image_id", "image", "captions"]
    assert ds["image_id"] == ["00007.jpg", "airport_1.jpg", "beach_3.jpg"]  # test split, sorted by name
    assert all(len(c) == 5 for c in ds["captions"])
    assert ds[1]["captions"][0] == "caption 0 of image airport_1.jpg ."
    cap = load_karpathy(root / "dataset_rsicd.json", root / "RSICD_images", capitalize=True)
    assert cap[1]["captions"][0] == "Caption 0 of image airport_1.jpg ."
    assert len(load_karpathy(root / "dataset_rsicd.json", root / "RSICD_images", split=None)) == 4


def test_karpathy_bad_inputs(copy):
    root = copy("karpathy")
    j = root / "dataset_rsicd.json"
    data = json.loads(j.read_text())
    data["images"][0]["sentences"][2]["raw"] = ""
    j.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"images\[0\] \(airport_1.jpg\): field 'sentences\[2\].raw' is empty"):
        load_karpathy(j, root / "RSICD_images")
    ds = load_karpathy(j, root / "RSICD_images", on_error="skip")
    assert ds["image_id"] == ["00007.jpg", "beach_3.jpg"] and "1 skipped" in ds.info.description
    data["images"][0]["sentences"][2]["raw"] = "a restored caption ."
    j.write_text(json.dumps(data))
    (root / "RSICD_images" / "beach_3.jpg").unlink()
    with pytest.raises(DataFormatError, match="beach_3.jpg: image file not found"):
        load_karpathy(j, root / "RSICD_images", on_error="raise", split="test")
    j.write_text(json.dumps([{"filename": "a.jpg"}]))
    with pytest.raises(DataFormatError, match="expected an object with an 'images' list"):
        load_karpathy(j, root / "RSICD_images")
    j.write_text(json.dumps({"images": [{"filename": "a.jpg", "split": "test"}]}))
    with pytest.raises(DataFormatError, match=r"images\[0\]: expected keys 'filename', 'split', 'sentences'"):
        load_karpathy(j, root / "RSICD_images")
    with pytest.raises(DataFormatError, match="no images with split == 'val'"):
        load_karpathy(FIX / "karpathy" / "dataset_rsicd.json", FIX / "karpathy" / "RSICD_images", split="val")


def test_rsicd_parquet_schema():
    ds = load_rsicd_parquet(str(FIX / "rsicd_hf" / "test-00000-of-00001.parquet"))
    assert ds.column_names == ["image_id", "image", "captions"]
    assert ds["image_id"] == ["a.jpg", "b.jpg"] and len(ds[1]["captions"]) == 5
    hf = load_rsicd_parquet(str(FIX / "rsicd_hf"), split="test")  # local folder via load_dataset
    assert hf["image_id"] == ["a.jpg", "b.jpg"]
    import datasets

    bad = datasets.Dataset.from_dict({"filename": ["x.jpg"], "text": ["a"]})
    with pytest.raises(DataFormatError, match="expected columns"):
        rsicd_hf_to_retrieval(bad)


# ---------------------------------------------------------------- classification

@pytest.mark.parametrize("raw,expected", [
    ("BaseballField", "baseball field"), ("storage_tanks", "storage tanks"), ("SeaLake", "sea lake"),
    ("denseresidential", "denseresidential"), ("Railway Station", "railway station"),
    ("harbor-and-port", "harbor and port"), ("AnnualCrop", "annual crop"), ("NWPUAirport", "nwpu airport")])
def test_normalize_class_name(raw, expected):
    assert normalize_class_name(raw) == expected


def test_class_folder_full_and_80_20():
    root = FIX / "class_folder"
    ds = load_class_folder(root)
    names = ds.features["label"].names
    assert names == ["airport", "baseball field", "storage tanks"] and len(ds) == 15
    for row in ds:  # label follows the folder name, never an index
        folder = row["image_id"].split("/")[0]
        assert names[row["label"]] == normalize_class_name(folder)
    test = load_class_folder(root, protocol="remoteclip_80_20", split="test")
    train = load_class_folder(root, protocol="remoteclip_80_20", split="train")
    assert len(test) == 3 and len(train) == 12
    assert "Airport/airport_4.jpg" in test["image_id"] and not set(test["image_id"]) & set(train["image_id"])
    mapped = load_class_folder(root, class_map={"storage tanks": "storage tank", "Airport": "airfield"})
    assert mapped.features["label"].names == ["airfield", "baseball field", "storage tank"]


def test_remoteclip_rule_sorts_by_name():
    files = [f"img_{i:02d}.jpg" for i in range(10)][::-1]
    assert remoteclip_80_20(files, "test") == ["img_08.jpg", "img_09.jpg"]
    assert len(remoteclip_80_20(files, "train")) == 8


def test_class_folder_bad_inputs(copy, tmp_path):
    root = copy("class_folder")
    (root / "Airport" / "airport_2.jpg").write_bytes(b"broken")
    with pytest.raises(DataFormatError, match=r"Airport/airport_2.jpg: not a readable image"):
        load_class_folder(root)
    assert len(load_class_folder(root, on_error="skip")) == 14
    (root / "storage tanks").mkdir()
    with pytest.raises(DataFormatError, match="two folders map to the same class name"):
        load_class_folder(root, on_error="skip")
    with pytest.raises(DataFormatError, match="no class sub-folders"):
        load_class_folder(_empty(tmp_path))
    with pytest.raises(ValueError, match="protocol"):
        load_class_folder(FIX / "class_folder", protocol="70_30")


def _empty(tmp_path):
    p = tmp_path / "empty"
    p.mkdir()
    return p


def test_to_classification_maps_by_name():
    import datasets

    # upstream indices in a different order than our sorted names
    feat = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["SeaLake", "AnnualCrop", "Forest"])})
    img = {"bytes": (FIX / "dual_imagefolder" / "a.png").read_bytes(), "path": None}
    ds = datasets.Dataset.from_dict({"image": [img] * 3, "label": [0, 1, 2]}, features=feat)
    out = to_classification(ds, class_map={"SeaLake": "sea or lake"})
    names = out.features["label"].names
    assert names == ["annual crop", "forest", "sea or lake"]
    assert [names[i] for i in out["label"]] == ["sea or lake", "annual crop", "forest"]
    assert out.column_names == ["image_id", "image", "label"]
    plain = datasets.Dataset.from_dict({"image": [img], "label": [3]})
    with pytest.raises(DataFormatError, match="expected a ClassLabel"):
        to_classification(plain)


# ---------------------------------------------------------------- AIR-SLT

def test_airslt_fixture():
    cases = load_airslt(FIX / "airslt")
    assert len(cases) == 3
    assert cases[1].caption == "a white plane is parked beside the terminal"
    assert [p.shape for p in cases[1].polygons] == [(3, 2), (4, 2)]
    assert cases[0].polygons[0][1].tolist() == [30.0, 3.0]  # (x, y)
    assert Path(cases[2].image_path).name == "1.jpg"


def test_airslt_bad_inputs(copy):
    root = copy("airslt")
    anno = root / "annotations" / "anno.json"
    items = json.loads(anno.read_text())
    bad = [dict(items[0], points=[[[1, 2], [3, 4]]])]
    anno.write_text(json.dumps(bad))
    with pytest.raises(DataFormatError, match=r"item 0 \(0.jpg\): a polygon must be >= 3"):
        load_airslt(root)
    anno.write_text(json.dumps([dict(items[0], points=[[[1, 2], [300, 4], [5, 6]]])]))
    with pytest.raises(DataFormatError, match="polygon outside the 64x64 image"):
        load_airslt(root)
    anno.write_text(json.dumps([dict(items[0], jpg_name="9.jpg"), items[2]]))
    with pytest.raises(DataFormatError, match=r"item 0 \(9.jpg\): image .*9.jpg not found"):
        load_airslt(root)
    assert len(load_airslt(root, on_error="skip")) == 1
    anno.write_text(json.dumps([{"caption": "x", "jpg": "0.jpg"}]))
    with pytest.raises(DataFormatError, match="expected keys 'caption', 'jpg_name', 'points'"):
        load_airslt(root)
    anno.write_text(json.dumps([dict(items[0], caption="")]))
    with pytest.raises(DataFormatError, match="field 'caption' is empty"):
        load_airslt(root)
    anno.unlink()
    with pytest.raises(DataFormatError, match="anno.json: not found"):
        load_airslt(root)


def test_write_airslt_roundtrip(tmp_path):
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (40, 40)).save(tmp_path / "imgs" / "0.jpg")
    write_airslt(tmp_path, [{"caption": "a pond", "jpg_name": "0.jpg",
                               "points": [np.array([[1, 1], [10, 1], [10, 10]])]}])
    (case,) = load_airslt(tmp_path)
    assert case.caption == "a pond" and case.polygons[0].dtype == np.float64
    assert not list((tmp_path / "annotations").glob("*.tmp"))
