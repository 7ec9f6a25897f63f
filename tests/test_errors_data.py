"""Issue #14, loaders and tokenizer: wrong field types, non-UTF-8 files, all-skipped sets and
duplicate ids end in DataFormatError / TokenizeError naming the file, line and field."""
import json

import numpy as np
import pytest
from PIL import Image

from dgtrs_lib import TokenizeError, tokenize
from dgtrs_lib.data.airslt import load_airslt
from dgtrs_lib.data.classfolder import load_class_folder
from dgtrs_lib.data.common import DataFormatError
from dgtrs_lib.data.dual import load_dual_imagefolder, load_sharegpt4v
from dgtrs_lib.data.karpathy import load_karpathy


def _img(path, size=32):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


# ----------------------------------------------------------------------------- file-name fields
def test_non_string_file_names_are_named_errors(tmp_path):
    _img(tmp_path / "a.png")
    _jsonl(tmp_path / "metadata.jsonl", [{"file_name": "a.png", "long_caption": "A b. C."},
                                         {"file_name": 7, "long_caption": "A b. C."}])
    with pytest.raises(DataFormatError, match=r"metadata.jsonl: line 2: field 'file_name' must be a string \(a file "
                                              r"name\), got int"):
        load_dual_imagefolder(tmp_path)
    (tmp_path / "k.json").write_text(json.dumps({"images": [{"filename": ["a.png"], "split": "test",
                                                            "sentences": [{"raw": "x"}]}]}))
    with pytest.raises(DataFormatError, match=r"k.json: images\[0\]: field 'filename' must be a string .*got list"):
        load_karpathy(tmp_path / "k.json", tmp_path)
    (tmp_path / "slt" / "annotations").mkdir(parents=True)
    (tmp_path / "slt" / "annotations" / "anno.json").write_text(json.dumps([{"caption": "x", "jpg_name": 3, "points": []}]))
    with pytest.raises(DataFormatError, match=r"anno.json: item 0: field 'jpg_name' must be a string .*got int"):
        load_airslt(tmp_path / "slt")
    (tmp_path / "sg.json").write_text(json.dumps([{"image": None, "conversations": [{}, {"value": "x"}]}]))
    with pytest.raises(DataFormatError, match=r"sg.json: item 0: field 'image' must be a string"):
        load_sharegpt4v(tmp_path / "sg.json", tmp_path)


def test_non_utf8_files_name_the_line(tmp_path):
    _img(tmp_path / "a.png")
    (tmp_path / "metadata.jsonl").write_bytes(b'{"file_name": "a.png", "long_caption": "ok"}\n'
                                              b'{"file_name": "a.png", "long_caption": "caf\xe9"}\n')
    with pytest.raises(DataFormatError, match=r"metadata.jsonl: line 2: not UTF-8 text \(byte 0xe9"):
        load_dual_imagefolder(tmp_path)
    (tmp_path / "k.json").write_bytes(b'{"images": ["\xff"]}')
    with pytest.raises(DataFormatError, match=r"k.json: line 1: not UTF-8 text"):
        load_karpathy(tmp_path / "k.json", tmp_path)


# ----------------------------------------------------------------------------- nothing left
def test_a_set_where_every_item_is_skipped_is_an_error(tmp_path):
    _jsonl(tmp_path / "metadata.jsonl", [{"file_name": "gone.png", "long_caption": "A b."}])
    with pytest.raises(DataFormatError, match=r"metadata.jsonl: every item was skipped \(1: line 1 \(gone.png\)"):
        load_dual_imagefolder(tmp_path, on_error="skip")
    (tmp_path / "k.json").write_text(json.dumps({"images": [{"filename": "gone.jpg", "split": "test",
                                                            "sentences": [{"raw": "x"}]}]}))
    with pytest.raises(DataFormatError, match="k.json: every item was skipped"):
        load_karpathy(tmp_path / "k.json", tmp_path, on_error="skip")
    (tmp_path / "cls" / "Forest").mkdir(parents=True)
    (tmp_path / "cls" / "Forest" / "0.png").write_bytes(b"not a png")
    with pytest.raises(DataFormatError, match="cls: every item was skipped"):
        load_class_folder(tmp_path / "cls", on_error="skip")
    (tmp_path / "empty" / "Forest").mkdir(parents=True)
    with pytest.raises(DataFormatError, match="empty: no items; expected images in the class sub-folders"):
        load_class_folder(tmp_path / "empty")
    (tmp_path / "slt" / "annotations").mkdir(parents=True)
    (tmp_path / "slt" / "annotations" / "anno.json").write_text(
        json.dumps([{"caption": "x", "jpg_name": "gone.jpg", "points": [[[0, 0], [1, 0], [1, 1]]]}]))
    with pytest.raises(DataFormatError, match="anno.json: every item was skipped"):
        load_airslt(tmp_path / "slt", on_error="skip")


def test_duplicate_ids_are_an_error_or_a_counted_skip(tmp_path):
    _img(tmp_path / "a.png")
    _img(tmp_path / "a.jpg")
    _jsonl(tmp_path / "metadata.jsonl", [{"file_name": "a.png", "long_caption": "A b. C."},
                                         {"file_name": "a.png", "long_caption": "Other. D."},
                                         {"file_name": "a.jpg", "long_caption": "Same stem. E."}])
    with pytest.raises(DataFormatError, match=r"line 2 \(a.png\): duplicate image_id 'a' \(first used by line 1"):
        load_dual_imagefolder(tmp_path)
    ds = load_dual_imagefolder(tmp_path, on_error="skip")
    assert ds["image_id"] == ["a"] and "1 loaded, 2 skipped" in ds.info.description


def test_missing_roots_name_the_near_misses(tmp_path):
    (tmp_path / "dataset_rsicd.json").write_text("{}")
    with pytest.raises(DataFormatError, match=r"dataset_rsic.json: not found; near misses in .*: dataset_rsicd.json"):
        load_karpathy(tmp_path / "dataset_rsic.json", tmp_path)
    (tmp_path / "k.json").write_text(json.dumps({"images": []}))
    with pytest.raises(DataFormatError, match=r"imgs: not found; expected the folder holding the JSON's images"):
        load_karpathy(tmp_path / "k.json", tmp_path / "imgs")


# ----------------------------------------------------------------------------- tokenizer
@pytest.mark.parametrize("value, words", [
    (None, "got NoneType; expected a string or a list of strings"),
    ({"a beach": 1}, "got dict (tokenising it would read its keys)"),
    (b"a beach", "got bytes; decode it first"),
    (["ok", b"raw"], "texts[1] is bytes; expected a string to tokenize (decode it first"),
    (["ok", 3], "texts[1] is int; expected a string"),
    (["\ud800"], "texts[0] holds '\\ud800' at position 0, not valid Unicode"),
])
def test_tokenizer_names_what_it_cannot_take(value, words):
    with pytest.raises(TokenizeError) as err:
        tokenize(value)
    assert words in str(err.value)
    assert isinstance(err.value, TypeError) and isinstance(err.value, ValueError)


def test_tokenizer_context_length_must_be_an_integer():
    for bad in (1, 77.5, "77", True, None):
        with pytest.raises(TokenizeError, match="context_length must be an integer >= 2"):
            tokenize("a beach", bad)
    assert tokenize("a beach", np.int64(10)).shape == (1, 10)
