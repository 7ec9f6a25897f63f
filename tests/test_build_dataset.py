"""The dataset builder end to end: the CLI offline on a folder, resume after a kill mid-shard, every
filter's count in the report, the planted evaluation-set duplicate found, the output's schema."""
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from dgtrs_lib.data.build import MetadataCaptioner, build_dataset, load_built
from dgtrs_lib.data.build.filters import FILTERS, FilterConfig
from dgtrs_lib.data.build.inputs import InputSet, syndg_items
from dgtrs_lib.data.build.leakage import HashIndex, planted_copies
from dgtrs_lib.data.build.writer import ShardStore
from dgtrs_lib.data.schema import dual_features
from dgtrs_lib.errors import ConflictError

ROOT = Path(__file__).resolve().parent.parent


def _folder(tmp_path, n=6):
    """A folder of SynDG-RS images with their objects in metadata.jsonl, one planted Sentinel-2
    evaluation patch (re-encoded as JPEG), and one exact copy of another image's metadata."""
    root = tmp_path / "images"
    (root / "scenes").mkdir(parents=True)
    lines = []
    for it in syndg_items("train", n):
        it.image.save(root / "scenes" / f"{it.image_id}.png")
        objects = [{k: g[k] for k in ("type", "count", "colour", "position", "size")} for g in it.meta["objects"]]
        lines.append({"file_name": f"scenes/{it.image_id}.png", "label": it.meta["class"], "objects": objects})
    it = syndg_items("train", 1)[0]                           # a second image with the same metadata
    it.image.rotate(90).save(root / "scenes" / "twin.png")
    lines.append({**lines[0], "file_name": "scenes/twin.png"})
    planted = planted_copies("sentinel", 1)[0]
    planted.image.save(root / "planted.jpg", quality=92)
    (root / "metadata.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root, planted.meta["planted_from"]


def _cli(*args, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "dgtrs_lib.data.build", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_cli_builds_a_folder_offline_reports_every_filter_and_flags_the_planted_duplicate(tmp_path, tmp_outputs):
    root, planted_from = _folder(tmp_path)
    out = tmp_path / "built"
    res = _cli("--input", str(root), "--out", str(out), "--shard-size", "3", "--no-progress",
               "--no-default-eval", "--eval", "sentinel", "--eval", "syndg:16")
    assert res.returncode == 0, res.stderr[-3000:]
    for f in FILTERS:
        assert f in res.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["input_rows"] == 8 and report["shards"] == 3
    assert report["dropped"]["eval_leak"] == 1
    assert report["leaks"][0]["image_id"] == "planted" and report["leaks"][0]["match"] == planted_from
    assert report["dropped"]["exact_duplicate"] == 1                      # the twin's caption
    assert report["kept"] == 6 and report["funnel"][-1]["rows"] == 6
    assert report["fact_check"]["long"]["wrong"] == 0 and report["fact_check"]["long"]["statements"] > 0
    ds = load_built(out)
    assert ds.features == dual_features() and len(ds) == 6
    meta = json.loads(ds[0]["meta"])
    assert meta["provenance"]["captioner"] == "metadata" and meta["provenance"]["model_id"] == "metadata-to-text"
    assert {"short_tokens", "long_tokens", "fact_long", "leak", "jaccard"} <= set(meta["scores"])
    card = (out / "README.md").read_text()
    assert card.startswith("---\npretty_name:") and "| eval_leak |" in card
    # the same command again: every shard is finished, nothing is rebuilt
    again = _cli("--input", str(root), "--out", str(out), "--shard-size", "3", "--no-progress",
                 "--no-default-eval", "--eval", "sentinel", "--eval", "syndg:16")
    assert again.returncode == 0 and "skipped 3 finished shard(s)" in again.stdout


def test_cli_errors_are_one_line_with_their_exit_code(tmp_path):
    res = _cli("--input", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert res.returncode == 3 and res.stderr.strip().count("\n") == 0 and "not found" in res.stderr
    res = _cli("--input", "syndg:test:4", "--out", str(tmp_path / "o"), "--eval", "karpathy:RSICD:/no/such.json:/tmp")
    assert res.returncode == 2 and "/no/such.json: not found" in res.stderr
    env = {"DGTRS_ONLINE": "0"}
    res = _cli("--input", "syndg:test:4", "--out", str(tmp_path / "o"), "--captioner", "vlm", env_extra=env)
    assert res.returncode == 5 and "DGTRS_ONLINE=1" in res.stderr and "--captioner metadata" in res.stderr
    res = _cli("--input", "syndg:test:4", "--out", str(tmp_path / "o"), "--clip-threshold", "0.2")
    assert res.returncode == 2 and "needs --clip" in res.stderr


KILLER = textwrap.dedent("""
    import os, signal, sys
    from dgtrs_lib.data.build import MetadataCaptioner, build_dataset
    from dgtrs_lib.data.build.inputs import syndg_items

    class Killer(MetadataCaptioner):
        def caption(self, items):
            if items[0].image_id.endswith("000008"):       # the third shard: die in the middle of it
                os.kill(os.getpid(), signal.SIGKILL)
            return super().caption(items)

    build_dataset(syndg_items("train", 14), Killer(), sys.argv[1], shard_size=4, progress=False)
""")


class Counting(MetadataCaptioner):
    def __init__(self):
        super().__init__()
        self.seen = []

    def caption(self, items):
        self.seen.append(items[0].image_id)
        return super().caption(items)


def test_resume_after_a_kill_mid_shard_equals_an_uninterrupted_build(tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", KILLER, str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    store = ShardStore(out)
    assert [store.done(i) for i in range(4)] == [True, True, False, False]
    (store.data / ".shard-00002.parquet.abc.tmp").write_bytes(b"torn")   # what a kill during a write leaves
    cap = Counting()
    report = build_dataset(syndg_items("train", 14), cap, out, shard_size=4, progress=False)
    assert cap.seen == ["syndg-train-000008", "syndg-train-000012"] and report["skipped_shards"] == 2
    assert not list(store.data.glob(".*.tmp"))
    whole = build_dataset(syndg_items("train", 14), MetadataCaptioner(), tmp_path / "whole", shard_size=4,
                          progress=False)
    a, b = load_built(out), load_built(tmp_path / "whole")
    assert a["image_id"] == b["image_id"] and a["long_caption"] == b["long_caption"]
    assert report["funnel"] == whole["funnel"]


def test_a_different_configuration_is_a_conflict_unless_overwritten(tmp_path):
    items = syndg_items("train", 4)
    build_dataset(items, MetadataCaptioner(), tmp_path / "b", shard_size=2, progress=False)
    with pytest.raises(ConflictError, match="another filters"):
        build_dataset(items, MetadataCaptioner(), tmp_path / "b", shard_size=2, progress=False,
                      filters=FilterConfig(near_jaccard=0.5))
    r = build_dataset(items, MetadataCaptioner(), tmp_path / "b", shard_size=2, progress=False, overwrite=True,
                      filters=FilterConfig(near_jaccard=0.5))
    assert r["skipped_shards"] == 0 and r["kept"] >= 1


def test_every_filter_drops_its_crafted_row(tmp_path):
    """One row per filter, each failing exactly that filter (a captioner that writes crafted text)."""
    from dgtrs_lib.data.build.captioners import Caption, Captioner
    from dgtrs_lib.data.build.filters import ClipAgreement
    from dgtrs_lib.data.build.inputs import Item

    good = "This aerial image shows a harbor. Three red boats are on the left side. Altogether there are 3 objects."
    meta = {"class": "harbor", "objects": [{"type": "boat", "colour": "red", "count": 3}], "source": "syndg-rs"}
    texts = {"ok": ("A harbor with three red boats.", good), "leak": ("A harbor with three red boats.", good + " Leak."),
             "refusal": ("I'm sorry, I cannot see it.", good + " R."), "length": ("Boats.", good + " L."),
             "fact": ("A harbor with nine red boats.", good + " F."), "dup": ("A harbor with three red boats.", good),
             "near": ("A harbor with three red boats.", good + " Indeed.")}
    import numpy as np

    def texture(seed):  # a distinct picture per row
        rng = np.random.default_rng(seed)
        return Image.fromarray(rng.integers(0, 255, (8, 8, 3)).astype(np.uint8)).resize((64, 64), Image.BICUBIC)

    items = [Item(k, (lambda i=i: texture(i)), meta, "harbor") for i, k in enumerate(texts)]

    class Crafted(Captioner):
        kind = "crafted"

        def caption(self, its):
            return [Caption(*texts[it.image_id]) for it in its]

    leak = HashIndex().add([items[1].image], ["EVAL/leak"])
    clip = ClipAgreement.from_source("tiny-random")
    report = build_dataset(InputSet(items, "crafted"), Crafted(), tmp_path / "c", shard_size=3, leak_index=leak,
                           clip=clip, filters=FilterConfig(near_jaccard=0.7), progress=False)
    assert report["dropped"] == {"eval_leak": 1, "empty_or_refusal": 1, "length": 1, "fact_check": 1,
                                 "clip_agreement": 0, "exact_duplicate": 1, "near_duplicate": 1}
    assert load_built(tmp_path / "c")["image_id"] == ["ok"]
    assert report["clip"]["n"] == 7
    # the same build with a CLIP threshold above every score: the CLIP filter drops the survivor
    report = build_dataset(InputSet(items, "crafted"), Crafted(), tmp_path / "d", shard_size=3, leak_index=leak,
                           clip=clip, filters=FilterConfig(near_jaccard=0.7, clip_threshold=1.5), progress=False)
    assert report["dropped"]["clip_agreement"] >= 1 and report["kept"] == 0


@pytest.mark.slow
def test_cli_vlm_captioner_from_a_local_folder_builds_offline(tmp_path, tmp_outputs):
    """The real loading path (AutoProcessor + AutoModelForImageTextToText) on a saved tiny random
    LLaVA: offline, because the folder is local. Its captions are nonsense; the filters say so."""
    from dgtrs_lib.data.build.captioners import tiny_random_vlm

    model, processor = tiny_random_vlm()
    folder = tmp_path / "tiny-vlm"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    out = tmp_path / "vlm-built"
    res = _cli("--input", "syndg:train:4", "--out", str(out), "--captioner", "vlm", "--model", str(folder),
               "--batch-size", "2", "--no-progress", "--no-default-eval", "--eval", "syndg:4",
               env_extra={"DGTRS_ONLINE": "0", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    config = json.loads((out / "build.json").read_text())
    assert config["captioner"]["captioner"] == "vlm" and config["captioner"]["model_id"] == str(folder)
    report = json.loads((out / "report.json").read_text())
    assert report["dropped"]["eval_leak"] == 0 and report["built_rows"] == 4
    assert report["kept"] + sum(report["dropped"].values()) == 4
    assert f"kept {report['kept']} of 4 images" in res.stdout
    assert report["fact_check"]["long"]["captions"] == 4   # the nonsense is fact-checked like any caption
