"""Fact check of a caption against what is known about its image: counts, colours, classes, land cover.

The long-text tasks of DGTRS-CLIP (arXiv:2503.19311, sections 3-4) reward captions that state the
right objects, counts, colours and positions; a vision-language captioner also states wrong ones
(hallucination). Where an image has metadata, this module parses the checkable statements of a
caption and compares each with the metadata:

* **object counts** -- "six orange boats", "2 large white boats", "a single tent": a number (digits
  or words up to twenty, "a pair of", "a single"), optional size and colour words, an object noun
  (the SynDG-RS object types, singular or plural, and the types named in the metadata). Wrong if no
  group of that type (and colour, when stated) exists, or the stated number differs from the
  matching groups' total; "N objects" is checked against the total count;
* **colours** -- "the cyan cabins" without a number: wrong if the type exists in no group of that
  colour (synonyms: pink = magenta, turquoise = cyan, grey = gray);
* **classes** -- a scene-class name of the class list (SynDG-RS's 25, or the classes the caller
  passes): wrong unless it is the image's class or the class of its mixed strip;
* **land cover** (Sentinel-2 tiles) -- "water covers 72 %" / "about 20 percent green vegetation":
  a percentage next to a cover word (water; vegetation, green; bare, built-up, soil, sand) is wrong
  when it is more than ``PERCENT_TOLERANCE`` points from the NDWI/NDVI fraction; a cover that is
  named (not negated: "no water") but covers under ``PRESENT_MIN`` of the tile, or negated but
  covers more than ``ABSENT_MAX``, is wrong.

:func:`check_caption` returns a :class:`FactCheck` (how many statements were checked, which were
wrong); :func:`hallucination_rate` sums them over a set. The parser is deliberately simple
(patterns, no language model): it checks the statements it recognises and says how many that was,
so a caption that states nothing checkable counts as unchecked, not as correct.

Taught in: Build your own dual-granularity dataset: the DGTRSD recipe as a tool (notebooks/10-build-your-own-dataset.ipynb)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

PERCENT_TOLERANCE = 15.0   # percentage points between a stated land-cover share and the index's
PRESENT_MIN = 0.02         # a named cover must cover at least this share of the image
ABSENT_MAX = 0.10          # a cover said to be absent may cover at most this share

NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
NUMBER_WORDS.update({"a single": 1, "single": 1, "a pair of": 2, "a couple of": 2, "a dozen": 12})
COLOUR_SYNONYMS = {"red": "red", "yellow": "yellow", "white": "white", "orange": "orange", "magenta": "magenta",
                   "pink": "magenta", "cyan": "cyan", "turquoise": "cyan", "blue": "blue", "green": "green",
                   "black": "black", "gray": "gray", "grey": "gray", "brown": "brown", "purple": "purple"}
SIZE_WORDS = ("small", "tiny", "large", "big", "medium-sized", "mid-sized", "medium")
COVER_WORDS = {"water": "water", "waters": "water", "vegetation": "vegetation", "vegetated": "vegetation",
               "green": "vegetation", "bare": "other", "built-up": "other", "built up": "other", "soil": "other",
               "sand": "other", "urban": "other"}
_NEGATION = re.compile(r"\b(?:no|without|free of|not any|lacks?)\s+(?:open\s+|green\s+|visible\s+)?$")


@dataclass
class FactCheck:
    """The checkable statements of one caption: how many, and the wrong ones (in words)."""

    checked: int = 0
    wrong: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.wrong

    def to_dict(self) -> dict:
        return {"checked": self.checked, "wrong": list(self.wrong)}


def _object_nouns(meta: dict) -> dict[str, str]:
    """noun (singular and plural) -> object type, from SynDG-RS's vocabulary and the metadata."""
    from dgtrs_lib.data.syndg.vocabulary import OBJECT_TYPES

    nouns = {}
    for t, (_shape, plural) in OBJECT_TYPES.items():
        nouns[t], nouns[plural] = t, t
    for g in meta.get("objects") or []:
        t = str(g.get("type", "")).lower()
        if t:
            nouns.setdefault(t, t)
            nouns.setdefault(t + ("es" if t.endswith(("s", "x", "ch", "sh")) else "s"), t)
    return nouns


def _alt(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _groups(meta: dict) -> list[dict]:
    out = []
    for g in meta.get("objects") or []:
        colour = COLOUR_SYNONYMS.get(str(g.get("colour", "")).lower(), str(g.get("colour", "")).lower())
        out.append({"type": str(g.get("type", "")).lower(), "colour": colour, "count": int(g.get("count", 0))})
    return out


def _check_objects(text: str, meta: dict, result: FactCheck) -> str:
    nouns = _object_nouns(meta)
    groups = _groups(meta)
    num, col, size, noun = _alt(NUMBER_WORDS), _alt(COLOUR_SYNONYMS), _alt(SIZE_WORDS), _alt(nouns)
    counted = re.compile(rf"\b(?P<num>\d+|{num})\s+(?:(?:{size})\s+)?(?:(?P<colour>{col})\s+)?(?:(?:{size})\s+)?"
                         rf"(?P<noun>{noun}|objects?)\b")
    for m in counted.finditer(text):
        n = int(m["num"]) if m["num"].isdigit() else NUMBER_WORDS[m["num"]]
        if m["noun"].startswith("object"):
            total = sum(g["count"] for g in groups)
            result.checked += 1
            if n != total:
                result.wrong.append(f"'{m[0]}': {total} objects in the metadata")
            continue
        t = nouns[m["noun"]]
        colour = COLOUR_SYNONYMS.get(m["colour"]) if m["colour"] else None
        match = [g for g in groups if g["type"] == t and (colour is None or g["colour"] == colour)]
        result.checked += 1
        if not match:
            result.wrong.append(f"'{m[0]}': no {colour + ' ' if colour else ''}{t} in the metadata")
        elif n != sum(g["count"] for g in match):
            result.wrong.append(f"'{m[0]}': {sum(g['count'] for g in match)} in the metadata")
    rest = counted.sub(" ", text)
    coloured = re.compile(rf"\b(?P<colour>{col})\s+(?:(?:{size})\s+)?(?P<noun>{noun})\b")
    for m in coloured.finditer(rest):
        t, colour = nouns[m["noun"]], COLOUR_SYNONYMS[m["colour"]]
        result.checked += 1
        if not any(g["type"] == t for g in groups):
            result.wrong.append(f"'{m[0]}': no {t} in the metadata")
        elif not any(g["type"] == t and g["colour"] == colour for g in groups):
            result.wrong.append(f"'{m[0]}': the {t} groups are " +
                                ", ".join(sorted({g['colour'] for g in groups if g['type'] == t})))
    return rest


def _check_classes(text: str, meta: dict, classes, result: FactCheck) -> None:
    true = {str(meta.get("class") or meta.get("label") or "").lower()}
    if meta.get("mix"):
        true.add(str(meta["mix"].get("class", "")).lower())
    true.discard("")
    if not true or not classes:
        return
    pattern = re.compile(rf"\b(?:{_alt([c.lower() for c in classes])})\b")
    named = set(pattern.findall(text))
    for c in sorted(named):
        result.checked += 1
        if c not in true:
            result.wrong.append(f"class '{c}': the metadata says {' / '.join(sorted(true))}")


def _check_land_cover(text: str, meta: dict, result: FactCheck) -> None:
    truth = {"water": meta.get("water_fraction"), "vegetation": meta.get("vegetation_fraction")}
    if truth["water"] is None and truth["vegetation"] is None:
        return
    truth = {k: float(v or 0.0) for k, v in truth.items()}
    truth["other"] = max(0.0, 1.0 - truth["water"] - truth["vegetation"])
    cover = re.compile(rf"\b(?:{_alt(COVER_WORDS)})\b")
    for sentence in re.split(r"(?<=[.;!?])\s+", text):
        hits = [(m.start(), COVER_WORDS[m[0]]) for m in cover.finditer(sentence)]
        for m in re.finditer(r"(\d{1,3}(?:\.\d+)?)\s?(?:%|percent)", sentence):
            if not hits:
                break
            after = [h for h in hits if h[0] >= m.end()]
            before = [h for h in hits if h[0] < m.start()]
            # "72 % water" (the next word) or "water covers 72 %" (the nearest before)
            kind = after[0][1] if after and after[0][0] - m.end() <= 20 else (before[-1][1] if before else after[0][1])
            stated, true = float(m[1]), 100 * truth[kind]
            result.checked += 1
            if abs(stated - true) > PERCENT_TOLERANCE:
                result.wrong.append(f"'{m[0]} {kind}': the indices give {true:.0f} %")
    first = {}
    for m in cover.finditer(text):  # each cover once per caption: its first mention
        first.setdefault(COVER_WORDS[m[0]], m.start())
    for kind, pos in first.items():
        negated = bool(_NEGATION.search(text[max(0, pos - 30):pos]))
        result.checked += 1
        if negated and truth[kind] > ABSENT_MAX:
            result.wrong.append(f"'no {kind}': {kind} covers {100 * truth[kind]:.0f} %")
        elif not negated and truth[kind] < PRESENT_MIN:
            result.wrong.append(f"'{kind}' named: it covers {100 * truth[kind]:.0f} %")


def check_caption(text: str, meta: dict, classes=None) -> FactCheck:
    """Compare the checkable statements of ``text`` with ``meta`` (module doc). ``classes``: the
    scene-class names to look for (default: SynDG-RS's when ``meta`` is a SynDG-RS ground truth)."""
    result = FactCheck()
    if not text or not meta:
        return result
    low = " ".join(str(text).lower().split())
    if classes is None and meta.get("source") == "syndg-rs":
        from dgtrs_lib.data.syndg.vocabulary import ALL_CLASSES

        classes = ALL_CLASSES
    if meta.get("objects") is not None:
        low = _check_objects(low, meta, result)
    _check_classes(low, meta, classes, result)
    _check_land_cover(low, meta, result)
    return result


def hallucination_rate(checks) -> dict:
    """``{captions, checked_captions, statements, wrong, rate, captions_with_error}`` of a list of
    :class:`FactCheck` s: ``rate`` = wrong / checked statements (None when nothing was checked)."""
    checks = list(checks)
    statements = sum(c.checked for c in checks)
    wrong = sum(len(c.wrong) for c in checks)
    with_claims = [c for c in checks if c.checked]
    return {"captions": len(checks), "checked_captions": len(with_claims), "statements": statements,
            "wrong": wrong, "rate": (wrong / statements) if statements else None,
            "captions_with_error": (sum(1 for c in with_claims if c.wrong) / len(with_claims)) if with_claims else None}
