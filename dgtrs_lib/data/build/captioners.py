"""Captioners: who writes the short caption and the long description of an image. One interface.

DGTRSD (arXiv:2503.19311, section 3) was captioned by multimodal LLMs (a public card of the data
names LLaVA-OneVision and Qwen2-VL; ``data_cards/dgtrsd.md``). A :class:`Captioner` takes a list of
:class:`~dgtrs_lib.data.build.inputs.Item` s and returns one :class:`Caption` (short, long and what
happened while writing them) per item, and says who it is (:meth:`Captioner.provenance`: kind,
model id and revision, prompt hash, generation settings -- what every row of a build records):

* :class:`MetadataCaptioner` writes both granularities from what is known about an image and from
  nothing else: the land-cover fractions of a Sentinel-2 tile (NDWI/NDVI; the whole tile and its
  3x3 grid), the ground truth of a SynDG-RS scene (class, object groups with count, size, colour
  and position, relations, mixed strip), or a folder's metadata (label, objects, an existing short
  caption). Deterministic, offline, CPU; every statement it makes is true of its metadata, so it is
  the reference against which a vision-language model's statements are checked
  (:mod:`dgtrs_lib.data.build.facts`). Its short caption stays within CLIP's 77 tokens.
* :class:`VLMCaptioner` asks a transformers vision-language model, through the library's own
  classes (``AutoProcessor`` + ``AutoModelForImageTextToText``, the processor's chat template,
  ``generate``): batched, greedy by default, bf16 on GPUs of compute capability >= 8.0, fp16 below,
  fp32 on the CPU (the rule of ``dgtrs_lib.training.precision``); prompts in
  :mod:`dgtrs_lib.data.build.prompts`. :meth:`VLMCaptioner.from_pretrained` downloads the model and
  passes ``env.require_online`` (offline: one clear error); ``VLMCaptioner(model, processor)``
  takes a model already in memory (the tests' tiny random LLaVA, :func:`tiny_random_vlm`, built
  from transformers' config classes: its text is nonsense by construction). Small images are
  upsampled to ``min_side`` px first (64 px tiles are below what these models were trained on).
* condensers turn a long description into the short caption when a captioner writes only the long
  one: :class:`FirstSentenceCondenser` (the ShareGPT4V -> Long-CLIP rule, ``long.split(". ")[0]``,
  :func:`dgtrs_lib.data.dual.first_sentence`) and :class:`LLMCondenser` (a text-only chat LLM with
  ``prompts.CONDENSE_PROMPT``).

Generated text is cleaned by :func:`clean_generation` (labels such as "Caption:", markdown,
quotes, whitespace) and the short caption cut to its first sentence; what was done is recorded in
``Caption.notes``.

Taught in: Build your own dual-granularity dataset: the DGTRSD recipe as a tool (notebooks/10-build-your-own-dataset.ipynb)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from dgtrs_lib.data.build.facts import PRESENT_MIN
from dgtrs_lib.data.build.prompts import CONDENSE_PROMPT, VLM_PROMPTS, prompt_hash
from dgtrs_lib.data.dual import first_sentence
from dgtrs_lib.errors import DataError, ModelError, RunError

DEFAULT_VLM = "Qwen/Qwen2-VL-2B-Instruct"  # alternative: llava-hf/llava-onevision-qwen2-0.5b-ov-hf
POSITIONS = ["upper left", "top", "upper right", "left", "center", "right", "lower left", "bottom", "lower right"]
POSITION_PHRASES = {"upper left": "in the upper left", "top": "along the top", "upper right": "in the upper right",
                    "left": "on the left side", "center": "in the center", "right": "on the right side",
                    "lower left": "in the lower left", "bottom": "along the bottom",
                    "lower right": "in the lower right"}
NUMBER_TEXT = ["no", "a single", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
               "twelve"]
COVER_PHRASES = {"water": "open water", "vegetation": "green vegetation", "other": "bare or built-up land"}


@dataclass
class Caption:
    """One image's captions and notes on how they were made (cleaning, truncation, condensing)."""

    short: str
    long: str
    notes: dict = field(default_factory=dict)


class Captioner:
    """The interface: ``caption(items) -> list[Caption]`` and ``provenance()``."""

    kind = "captioner"
    model_id: str | None = None
    revision: str | None = None
    prompts: dict | None = None

    def settings(self) -> dict:
        return {}

    def provenance(self) -> dict:
        return {"captioner": self.kind, "model_id": self.model_id, "revision": self.revision,
                "prompt_hash": prompt_hash(self.prompts) if self.prompts else None, "settings": self.settings()}

    def caption(self, items) -> list[Caption]:
        raise NotImplementedError


# ----------------------------------------------------------------------------- metadata -> text
def _number(n: int) -> str:
    return NUMBER_TEXT[n] if 0 <= n < len(NUMBER_TEXT) else str(n)


def _plural(t: str, n: int) -> str:
    try:
        from dgtrs_lib.data.syndg.vocabulary import OBJECT_TYPES

        plural = OBJECT_TYPES[t][1]
    except KeyError:
        plural = t + ("es" if t.endswith(("s", "x", "ch", "sh")) else "s")
    return t if n == 1 else plural


def _group_phrase(g: dict, with_size: bool = False) -> str:
    n = int(g.get("count", 0))
    words = [_number(n)]
    if with_size and g.get("size"):
        words.append(str(g["size"]))
    if g.get("colour"):
        words.append(str(g["colour"]))
    words.append(_plural(str(g["type"]), n))
    return " ".join(words)


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _scene_phrase(label: str) -> str:
    try:
        from dgtrs_lib.data.syndg.captions import CLASS_PHRASES

        if label in CLASS_PHRASES:
            return CLASS_PHRASES[label]
    except ImportError:  # pragma: no cover
        pass
    return label


def _cells(grid, at_least: float = 0.5) -> list[str]:
    return [POSITIONS[3 * r + c] for r in range(3) for c in range(3) if grid[r][c] >= at_least]


def land_cover_captions(meta: dict) -> tuple[str, str]:
    """(short, long) of a tile from its water / vegetation fractions and their 3x3 grids."""
    shares = {"water": float(meta.get("water_fraction", 0.0)), "vegetation": float(meta.get("vegetation_fraction", 0.0))}
    shares["other"] = max(0.0, 1.0 - shares["water"] - shares["vegetation"])
    order = sorted(shares, key=lambda k: -shares[k])
    label = str(meta.get("label") or "")
    main = COVER_PHRASES.get({"bare or built-up land": "other"}.get(label, label), label) if label else \
        COVER_PHRASES[order[0]]
    minor = [COVER_PHRASES[k] for k in order if shares[k] >= 0.15 and COVER_PHRASES[k] != main
             and not (label.startswith("mixed") and shares[k] >= 0.2)]
    short = f"A satellite image of {main}" + (f" with some {_join(minor)}" if minor else "") + "."
    sents = []
    if meta.get("size") and meta.get("gsd_m"):
        sents.append(f"This {meta['size']} by {meta['size']} pixel Sentinel-2 satellite image at {meta['gsd_m']} m "
                     f"resolution is about {meta['size'] * meta['gsd_m']} m across.")
    stated = [f"{round(100 * shares[k])} % {COVER_PHRASES[k]}" for k in order if shares[k] >= PRESENT_MIN]
    sents.append(f"By area it is {_join(stated)}." if stated else "")
    for k, grid_key in (("water", "water_grid"), ("vegetation", "vegetation_grid")):
        if shares[k] < PRESENT_MIN:  # named only when the fact check would accept it (one threshold)
            sents.append(f"There is {'no' if shares[k] == 0 else 'almost no'} {COVER_PHRASES[k]}.")
            continue
        grid = meta.get(grid_key)
        if not grid:
            continue
        cells = _cells(grid)
        name = COVER_PHRASES[k][0].upper() + COVER_PHRASES[k][1:]
        if len(cells) == 9:
            sents.append(f"{name} fills the whole image.")
        elif cells:
            sents.append(f"{name} fills the " + _join(cells) + (" part." if len(cells) == 1 else " parts."))
        else:
            sents.append(f"{name} appears only in small patches.")
    if label:
        sents.append(f"By its NDWI and NDVI indices the image is classed as {label}.")
    return short, " ".join(s for s in sents if s)


def object_captions(meta: dict, scene: str = "") -> tuple[str, str]:
    """(short, long) from a class and object groups (type, count, colour, size, position), relations
    and a mixed strip -- the SynDG-RS ground truth or a folder's ``objects`` list."""
    label = str(meta.get("class") or meta.get("label") or scene or "")
    groups = [g for g in (meta.get("objects") or []) if int(g.get("count", 0)) > 0 and g.get("type")]
    place = _scene_phrase(label) if label else "a scene"
    big = sorted(groups, key=lambda g: -int(g["count"]))[:2]
    short = f"An aerial image of {place}" + (f" with {_join([_group_phrase(g) for g in big])}" if big else "") + "."
    sents = [f"This aerial image shows {place}."]
    if meta.get("mix"):
        m = meta["mix"]
        sents.append(f"A strip of {_scene_phrase(str(m.get('class')))} runs along the {m.get('side')} side, "
                     f"about {round(100 * float(m.get('frac', 0)))} % of the image wide.")
    for g in groups:
        phrase = _group_phrase(g, with_size=True)
        where = POSITION_PHRASES.get(str(g.get("position", "")), "")
        verb = "is" if int(g["count"]) == 1 else "are"
        sents.append((f"{phrase[0].upper()}{phrase[1:]} {verb} {where}." if where else
                      f"There {verb} {phrase}."))
    for r in (meta.get("relations") or [])[:3]:
        a, b = groups[r["subject"]], groups[r["object"]] if r.get("object", 99) < len(groups) else (None, None)
        if a is None or b is None:
            continue
        sents.append(f"The {a.get('colour', '')} {_plural(a['type'], 2)} are {r['relation']} the "
                     f"{b.get('colour', '')} {_plural(b['type'], 2)}.".replace("  ", " "))
    if groups:
        total = sum(int(g["count"]) for g in groups)
        colours = len({g.get("colour") for g in groups if g.get("colour")})
        sents.append(f"Altogether there are {total} objects" + (f" in {colours} colours." if colours > 1 else "."))
    return short, " ".join(sents)


class MetadataCaptioner(Captioner):
    """Both granularities from an image's metadata only (module doc); images are not read."""

    kind = "metadata"
    model_id = "metadata-to-text"
    revision = "1"

    def settings(self) -> dict:
        return {"keep_existing_short": self.keep_existing_short}

    def __init__(self, keep_existing_short: bool = True):
        self.keep_existing_short = keep_existing_short

    def caption_one(self, item) -> Caption:
        meta = item.meta or {}
        notes = {}
        if "water_fraction" in meta or "vegetation_fraction" in meta:
            short, long = land_cover_captions(meta)
            notes["facts"] = "land cover"
        elif meta.get("objects"):
            short, long = object_captions(meta, item.scene)
            notes["facts"] = "objects"
        elif meta.get("class") or meta.get("label") or item.scene:
            label = str(meta.get("class") or meta.get("label") or item.scene)
            short = f"An aerial image of {_scene_phrase(label)}."
            long = f"This aerial image shows {_scene_phrase(label)}; nothing more is known about it."
            notes["facts"] = "label only"
        else:
            short, long = "", ""
            notes["facts"] = "none"
        if self.keep_existing_short and meta.get("short_caption"):
            short, notes["short"] = str(meta["short_caption"]), "existing"
        return Caption(short, long, notes)

    def caption(self, items) -> list[Caption]:
        return [self.caption_one(it) for it in items]


# ----------------------------------------------------------------------------- generated text
_LABEL = re.compile(r"^\s*(?:\*\*)?(?:short\s+caption|long\s+description|caption|description|answer)(?:\*\*)?\s*:\s*(?:\*\*)?\s*",
                    re.I)


def clean_generation(text: str) -> tuple[str, list[str]]:
    """Generated text -> plain caption; returns the text and what was removed."""
    done = []
    out = str(text).strip()
    if _LABEL.match(out):
        out = _LABEL.sub("", out, count=1).strip()
        done.append("label")
    if re.search(r"\*\*|__|^#+\s|^\s*[-*]\s", out, re.M):
        out = re.sub(r"\*\*|__", "", out)
        out = re.sub(r"^#+\s*|^\s*[-*]\s+", "", out, flags=re.M).strip()
        done.append("markdown")
    if len(out) >= 2 and out[0] in "\"'\u201c" and out[-1] in "\"'\u201d":
        out = out[1:-1].strip()
        done.append("quotes")
    squashed = " ".join(out.split())
    if squashed != out:
        done.append("whitespace")
    return squashed, done


def _first_sentence_of(text: str) -> str:
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return m.group(1) if m else text


class FirstSentenceCondenser:
    """Long-CLIP's rule (``train/sharegpt4v.py``): the short caption is the text before the first ". "."""

    name = "first_sentence"

    def condense(self, longs: list[str]) -> list[str]:
        out = []
        for t in longs:
            s = first_sentence(t).strip()
            out.append(s if s.endswith((".", "!", "?")) or not s else s + ".")
        return out


def _dtype_for(device: str, dtype: str = "auto"):
    import torch

    names = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if dtype != "auto":
        if dtype not in names:
            raise ModelError(f"dtype {dtype!r}: expected one of auto, {', '.join(names)}")
        return names[dtype]
    if not str(device).startswith("cuda"):
        return torch.float32
    return torch.bfloat16 if torch.cuda.get_device_capability(torch.device(device)) >= (8, 0) else torch.float16


def _tokenizer_of(processor):
    return getattr(processor, "tokenizer", processor)


class _ChatGenerator:
    """Batched chat-template generation with a transformers model (shared by the VLM and the LLM)."""

    def _check(self, model, processor, what: str):
        if not hasattr(model, "generate"):
            raise ModelError(f"{what}: {type(model).__name__} has no generate(); expected a transformers "
                             "generative model (AutoModelForImageTextToText / AutoModelForCausalLM)")
        if not getattr(processor, "chat_template", None) and not getattr(_tokenizer_of(processor), "chat_template",
                                                                          None):
            raise ModelError(f"{what}: the processor of {self.model_id} has no chat template; expected an "
                             "instruction-tuned model whose processor sets chat_template")
        _tokenizer_of(processor).padding_side = "left"  # decoder-only generation pads on the left

    def _generate(self, inputs, max_new_tokens: int) -> tuple[list[str], list[bool]]:
        import torch

        tok = _tokenizer_of(self.processor)
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in inputs.items()}
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(next(self.model.parameters()).dtype)
        kw = {"max_new_tokens": max_new_tokens, "do_sample": self.do_sample,
              "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id}
        if self.do_sample:
            kw.update(temperature=self.temperature, top_p=self.top_p)
        try:
            with torch.inference_mode():
                out = self.model.generate(**inputs, **kw)
        except torch.OutOfMemoryError as err:
            raise RunError(f"{self.model_id}: out of GPU memory generating a batch of "
                           f"{inputs['input_ids'].shape[0]}; expected a smaller --batch-size") from err
        new = out[:, inputs["input_ids"].shape[1]:]
        eos = tok.eos_token_id
        finished = [(eos is not None and bool((row == eos).any())) or len(row) < max_new_tokens for row in new]
        return tok.batch_decode(new, skip_special_tokens=True), finished


class VLMCaptioner(Captioner, _ChatGenerator):
    """A transformers vision-language model as a captioner (module doc)."""

    kind = "vlm"

    def __init__(self, model, processor, *, model_id: str = "(model in memory)", revision: str | None = None,
                 batch_size: int = 8, max_new_tokens_short: int = 48, max_new_tokens_long: int = 256,
                 do_sample: bool = False, temperature: float = 0.7, top_p: float = 0.9, min_side: int = 336,
                 short_from: str = "prompt", condenser=None, prompts: dict | None = None):
        if short_from not in ("prompt", "condense"):
            raise ModelError(f"short_from {short_from!r}: expected 'prompt' (ask the model) or 'condense'")
        self.model, self.processor = model, processor
        self.model_id, self.revision = model_id, revision
        self.batch_size, self.min_side = int(batch_size), int(min_side)
        self.max_new_tokens = {"short": int(max_new_tokens_short), "long": int(max_new_tokens_long)}
        self.do_sample, self.temperature, self.top_p = bool(do_sample), float(temperature), float(top_p)
        self.short_from = short_from
        self.condenser = condenser if condenser is not None else FirstSentenceCondenser()
        self.prompts = dict(prompts or VLM_PROMPTS)
        self._check(model, processor, "VLM captioner")

    @classmethod
    def from_pretrained(cls, model_id: str = DEFAULT_VLM, *, revision: str | None = None, device: str | None = None,
                        dtype: str = "auto", **kwargs) -> "VLMCaptioner":
        """Load ``model_id`` (a Hub id: online only; or a local folder) and build the captioner on ``device``."""
        from pathlib import Path

        from dgtrs_lib.env import require_online

        if not Path(model_id).expanduser().is_dir():  # a local folder needs no download
            require_online(f"vision-language model {model_id}",
                           "caption with the metadata captioner (--captioner metadata), pass a local model folder, "
                           "or a model and processor already in memory: VLMCaptioner(model, processor)")
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            processor = AutoProcessor.from_pretrained(model_id, revision=revision)
            model = AutoModelForImageTextToText.from_pretrained(model_id, revision=revision,
                                                                dtype=_dtype_for(device, dtype))
        except (OSError, ValueError) as err:
            raise ModelError(f"{model_id}: cannot load it with AutoProcessor + AutoModelForImageTextToText "
                             f"({str(err).splitlines()[0][:300]}); expected a public image-text-to-text model id") \
                from None
        model = model.to(device).eval()
        revision = revision or getattr(model.config, "_commit_hash", None)
        return cls(model, processor, model_id=model_id, revision=revision, **kwargs)

    def settings(self) -> dict:
        return {"batch_size": self.batch_size, "max_new_tokens": dict(self.max_new_tokens),
                "do_sample": self.do_sample, **({"temperature": self.temperature, "top_p": self.top_p}
                                               if self.do_sample else {}),
                "min_side": self.min_side, "short_from": self.short_from,
                "condenser": getattr(self.condenser, "name", type(self.condenser).__name__)
                if self.short_from == "condense" else None,
                "dtype": str(next(self.model.parameters()).dtype).replace("torch.", "")}

    def _images(self, items):
        from PIL import Image

        out = []
        for it in items:
            im = it.image
            if not isinstance(im, Image.Image):
                raise DataError(f"{it.image_id}: the image loader returned {type(im).__name__}; expected a PIL image")
            im = im.convert("RGB")
            if self.min_side and min(im.size) < self.min_side:
                scale = self.min_side / min(im.size)
                im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BICUBIC)
            out.append(im)
        return out

    def _ask(self, images, prompt: str, max_new_tokens: int) -> tuple[list[str], list[bool]]:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(images=images, text=[text] * len(images), padding=True, return_tensors="pt")
        return self._generate(inputs, max_new_tokens)

    def caption(self, items) -> list[Caption]:
        items = list(items)
        out = []
        for start in range(0, len(items), self.batch_size):
            batch = items[start:start + self.batch_size]
            images = self._images(batch)
            longs, long_done = self._ask(images, self.prompts["long"], self.max_new_tokens["long"])
            if self.short_from == "prompt":
                shorts, short_done = self._ask(images, self.prompts["short"], self.max_new_tokens["short"])
            else:
                shorts, short_done = None, [True] * len(batch)
            cleaned_long = [clean_generation(t) for t in longs]
            if shorts is None:
                shorts = self.condenser.condense([t for t, _ in cleaned_long])
            for i in range(len(batch)):
                short, s_notes = clean_generation(shorts[i])
                first = _first_sentence_of(short)
                if first != short:
                    s_notes.append("first sentence kept")
                long, l_notes = cleaned_long[i]
                out.append(Caption(first, long, {"short_cleaning": s_notes, "long_cleaning": l_notes,
                                                 "short_truncated": not short_done[i],
                                                 "long_truncated": not long_done[i]}))
        return out


class LLMCondenser(_ChatGenerator):
    """A text-only chat LLM that writes the short caption of a long description."""

    name = "llm"

    def __init__(self, model, tokenizer, *, model_id: str = "(model in memory)", max_new_tokens: int = 40,
                 prompt: str = CONDENSE_PROMPT):
        self.model, self.processor, self.model_id = model, tokenizer, model_id
        self.max_new_tokens, self.prompt = int(max_new_tokens), prompt
        self.do_sample, self.temperature, self.top_p = False, 1.0, 1.0
        self._check(model, tokenizer, "LLM condenser")
        self.name = f"llm:{model_id}"

    def condense(self, longs: list[str]) -> list[str]:
        if not longs:
            return []
        tok = _tokenizer_of(self.processor)
        texts = [tok.apply_chat_template([{"role": "user", "content": self.prompt.format(long=t)}],
                                         add_generation_prompt=True, tokenize=False) for t in longs]
        inputs = tok(texts, padding=True, return_tensors="pt", add_special_tokens=False)
        outs, _ = self._generate(dict(inputs), self.max_new_tokens)
        return [clean_generation(t)[0] for t in outs]


# ----------------------------------------------------------------------------- a tiny random VLM (tests)
TINY_WORDS = ("the a an of and with in on is are image scene water green vegetation field fields road roads "
              "boat boats house houses car cars red white orange cyan two three four five six many some near "
              "left right top bottom center upper lower . ,").split()
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {% if m['content'] is string %}{{ m['content'] }} {% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}"
    "{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}")


def tiny_tokenizer():
    """A word-level tokenizer (``tokenizers``) over :data:`TINY_WORDS` with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    special = ["<pad>", "<s>", "</s>", "<unk>", "<image>", "<|user|>", "<|assistant|>"]
    vocab = {t: i for i, t in enumerate(special + list(dict.fromkeys(TINY_WORDS)))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##")  # joins tokens with spaces
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                  unk_token="<unk>", additional_special_tokens=["<image>", "<|user|>", "<|assistant|>"])
    tok.chat_template = TINY_CHAT_TEMPLATE
    return tok


def tiny_random_vlm(seed: int = 0, image_size: int = 32):
    """``(model, processor)``: a randomly initialised LLaVA (CLIP vision tower + Llama decoder, two
    layers of width 32) and its processor, built offline from transformers' config classes. For code
    paths only: what it writes is nonsense."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tok = tiny_tokenizer()
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                         crop_size={"height": image_size, "width": image_size})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tok, patch_size=8,
                               vision_feature_select_strategy="default", chat_template=TINY_CHAT_TEMPLATE,
                               num_additional_image_tokens=1)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                       image_size=image_size, patch_size=8),
        text_config=LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                                pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                                eos_token_id=tok.eos_token_id),
        image_token_index=tok.convert_tokens_to_ids("<image>"), vision_feature_select_strategy="default",
        vision_feature_layer=-1)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    return model, processor


def tiny_random_llm(seed: int = 0):
    """``(model, tokenizer)``: a randomly initialised two-layer Llama with :func:`tiny_tokenizer` (tests)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=512, pad_token_id=tok.pad_token_id,
                                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).eval()
    return model, tok
