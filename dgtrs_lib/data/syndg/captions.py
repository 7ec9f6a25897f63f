"""SynDG-RS captions: a ground truth -> alt-text, short captions and a long description.

Three text styles, each written from the scene's ground truth (class, layout, object groups with
type, count, size, colour, grid position, pairwise relations):

* **Alt-text** (:func:`write_alt_text`, the pre-training corpus of the miniature "OpenAI CLIP"):
  terse, instance-level and *order-sensitive* -- "3 red boats top left of 2 white warehouses,
  harbor" -- one to three facts, with a length distribution skewed short (most captions a
  handful of tokens, a thin tail towards the 32-token base context), so that the early text
  positions are trained well and the late ones weakly: the condition under which Long-CLIP
  (Zhang et al. 2024, section 3.1) measured CLIP's effective length at about 20 of 77 tokens.
  It names the class (or one of its land-cover words, the Sentinel-2 class names) most of the
  time and mentions the prior-only object types when the image holds them.
* **Short captions** (:func:`write_short_captions`, fine-tuning and short-text retrieval): five
  distinct RSICD-like sentences per image, instance-level but coarse -- a class and one or two
  object groups with vague quantities ("some red boats are moored in a harbor"), never exact
  counts or grid positions -- in a different style from the long description's first sentence.
* **Long description** (:func:`write_long`, about 65-95 words): an opener naming the class, then
  the layout, every object group (count, size, colour, position: several templates and synonyms),
  up to two relations and the total count, in shuffled order and interleaved with class filler
  sentences, so the facts that tell two images of one class apart are spread over the whole
  length and in good part beyond the 32-token base context (the stand-in for CLIP's 77; paper
  arXiv:2503.19311, sections 1 and 3). The data report measures that fraction.

Design: :mod:`dgtrs_lib.data.syndg`.

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from __future__ import annotations

from dgtrs_lib.data.syndg.vocabulary import (
    ALL_CLASSES,
    ALT_POSITIONS,
    COLOUR_WORDS,
    LAND_COVER_WORDS,
    NUMBER_WORDS,
    OBJECT_TYPES,
    POSITION_WORDS,
    QUANTITY_WORDS,
    SIZE_NOUNS,
    SIZE_WORDS,
)

N_SHORT = 5  # short captions per image (RSITMD and RSICD give five)

OPENERS = ["This aerial image shows {cls}.", "Seen from above, the scene is {cls}.",
           "A top-down satellite view of {cls}.", "The picture is a remote sensing image of {cls}.",
           "Here we look straight down on {cls}."]
_MASS = {"farmland", "meadow", "bare land"}
_NOUNS = {c: c + " area" if c.endswith("residential") else c for c in ALL_CLASSES}  # "dense residential area"
CLASS_PHRASES = {c: n if c in _MASS else ("an " if n[0] in "aeiou" else "a ") + n for c, n in _NOUNS.items()}
# where things are "in" a scene of each class (short captions)
SCENE_PLACES = {c: ("on " if c in ("beach", "bridge", "highway", "meadow", "farmland", "bare land",
                                   "snowfield", "golf course", "solar farm", "playground") else "in ")
                + ("the " + n) for c, n in _NOUNS.items()}
FILLERS = {
    "airport": ["The surrounding ground is covered with short green grass.",
                "The runway surface is dark gray asphalt with a lighter taxiway beside it."],
    "harbor": ["The quay is paved with gray concrete.", "Long concrete piers reach out into the water."],
    "beach": ["The sand is pale and smooth.", "Low dune vegetation lines the far edge of the sand."],
    "river": ["The banks of the river are green meadows.", "There are no bridges over the river."],
    "lake": ["Green meadows surround the still water.", "The shore of the lake is irregular."],
    "bridge": ["A paved road crosses the water on a bridge.", "Green banks line both sides of the water."],
    "dense residential": ["Red-brown roofs fill almost every block.", "Narrow gray roads form a tight grid."],
    "sparse residential": ["Wide lawns separate the widely spaced roads.", "Only a few roofs stand on each block."],
    "industrial area": ["The ground is paved with gray concrete.", "Large dark gray roofs stand on the concrete."],
    "commercial area": ["Small light roofs of shops stand close together.", "The paved ground is bluish gray."],
    "parking lot": ["The asphalt is dark gray with light painted lines.", "There are no trees in the parking lot."],
    "railway station": ["Many parallel tracks run across the gravel.", "A light platform lies between the tracks."],
    "highway": ["A wide carriageway with a dashed middle line crosses the grass.", "Grass verges line the road."],
    "forest": ["The trees form a closed dark green canopy.", "There are no roads through the woods."],
    "sparse forest": ["Clumps of trees alternate with open light ground.", "The tree cover is broken."],
    "meadow": ["Light green grass covers the whole scene.", "There are no trees on the meadow."],
    "orchard": ["Round tree crowns stand in regular rows.", "Light soil shows between the trees."],
    "farmland": ["The fields alternate between green crops and brown soil.", "No roads cross the fields."],
    "stadium": ["A reddish running track surrounds the green field.", "Gray paved ground surrounds the stadium."],
    "playground": ["A small running track lies on the grass.", "Lawns surround the little sports field."],
    "desert": ["Sand dunes form long ripples.", "There is no vegetation in the sand."],
    "bare land": ["Brown earth with gray patches covers the ground.", "Nothing grows on the bare soil."],
    "golf course": ["Light green fairways wind across the rough.", "Pale sand bunkers dot the course."],
    "solar farm": ["Rows of dark solar panels cover the ground.", "Gravel shows between the panel rows."],
    "snowfield": ["Patchy snow covers most of the ground.", "Brown earth shows between the snow patches."],
}


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


def _noun(g: dict) -> str:
    return g["type"] if g["count"] == 1 else OBJECT_TYPES[g["type"]][1]


def _layout_sentence(cls: str, layout: dict, rng) -> str:
    if cls == "airport":
        half = "upper" if layout["runway"] == "horizontal" and layout["runway_at"] < 0.5 else (
            "lower" if layout["runway"] == "horizontal" else ("left" if layout["runway_at"] < 0.5 else "right"))
        d = "from left to right" if layout["runway"] == "horizontal" else "from top to bottom"
        return str(rng.choice([f"The runway runs {d} through the {half} half.",
                               f"A long runway crosses the image {d}, in its {half} half."]))
    if cls in ("harbor", "beach"):
        return str(rng.choice([f"The water lies on the {layout['water_side']} side of the image.",
                               f"Open water fills the {layout['water_side']} part of the scene."]))
    if cls in ("river", "bridge"):
        d = "from left to right" if layout["flow"] == "horizontal" else "from top to bottom"
        return str(rng.choice([f"The river winds {d} across the image.", f"A river meanders {d}."]))
    if cls == "lake":
        return "The lake lies near the middle of the image."
    if cls in ("farmland", "orchard"):
        return f"The {'fields' if cls == 'farmland' else 'tree rows'} are arranged in {layout['stripes']} strips."
    if cls in ("dense residential", "sparse residential"):
        return f"Straight roads cross the area every {layout['road_spacing']} pixels in both directions."
    if cls in ("parking lot", "railway station", "highway"):
        thing = {"parking lot": "rows of parking spaces", "railway station": "tracks", "highway": "road"}[cls]
        return f"The {thing} {'runs' if cls == 'highway' else 'run'} {layout['rows']}ly."
    if cls in ("stadium", "playground"):
        return f"The oval field is oriented {layout['field']}ly."
    if cls in ("industrial area", "commercial area"):
        return "Several building blocks stand on the paved ground."
    if cls in ("desert", "golf course", "solar farm", "snowfield"):
        return f"The pattern of the ground runs {layout['orientation']}ly."
    if cls == "bare land":
        return "Patches of gray gravel break the brown earth."
    return "The tree cover is dense." if layout.get("density") == "dense" else "The ground has a few open patches."


def _group_phrase(g: dict, rng) -> str:
    n = g["count"]
    noun = _noun(g)
    num = str(rng.choice(NUMBER_WORDS[n]))
    size = str(rng.choice(SIZE_WORDS[g["size"]]))
    colour = str(rng.choice(COLOUR_WORDS[g["colour"]]))
    pos = str(rng.choice(POSITION_WORDS[g["position"]]))
    be = "is" if n == 1 else "are"
    forms = [f"There {be} {num} {size} {colour} {noun} {pos}.",
             f"{_cap(pos)} {be} {num} {size} {colour} {noun}.",
             f"{_cap(num)} {colour} {noun}, {SIZE_NOUNS[g['size']]} in size, {'sits' if n == 1 else 'sit'} {pos}.",
             f"We can see {num} {colour} {noun} {pos}; {'it is' if n == 1 else 'they are'} {size}."]
    return str(rng.choice(forms))


def _short_ref(g: dict, rng) -> str:
    return f"the {rng.choice(COLOUR_WORDS[g['colour']])} {_noun(g)}"


def write_long(gt: dict, rng) -> str:
    """The long description of a ground truth (see the module docstring)."""
    cls = gt["class"]
    opener = str(rng.choice(OPENERS)).format(cls=CLASS_PHRASES[cls])
    body = [_layout_sentence(cls, gt["layout"], rng)]
    if gt.get("mix"):
        m = gt["mix"]
        body.append(str(rng.choice([f"The {m['side']} part of the image is {CLASS_PHRASES[m['class']]}.",
                                    f"A strip of {_NOUNS[m['class']]} borders the {m['side']} side."])))
    body += [_group_phrase(g, rng) for g in gt["objects"]]
    for rel in gt["relations"][: (2 if len(gt["objects"]) < 3 else 1)]:
        a, b = gt["objects"][rel["subject"]], gt["objects"][rel["object"]]
        body.append(_cap(f"{_short_ref(a, rng)} {'is' if a['count'] == 1 else 'are'} {rel['relation']} "
                         f"{_short_ref(b, rng)}."))
    total = sum(g["count"] for g in gt["objects"])
    body.append(str(rng.choice([f"Altogether there are {total} objects in {len(gt['objects'])} colours.",
                                f"In total the image contains {total} objects of {len(gt['objects'])} different colours."])))
    body = [body[i] for i in rng.permutation(len(body))]
    fillers = list(rng.permutation(FILLERS[cls]))
    target = int(rng.integers(60, 70))
    while len(" ".join([opener] + body).split()) < target and fillers:
        body.insert(int(rng.integers(1, len(body) + 1)), str(fillers.pop()))
    return " ".join([opener] + body)


def _quantity(g: dict, rng) -> str:
    return str(rng.choice(QUANTITY_WORDS[g["count"]]))


def _coarse(g: dict, rng, colour: bool) -> str:
    """'some red boats' / 'a boat': a coarse mention of one group."""
    q = _quantity(g, rng)
    c = f"{rng.choice(COLOUR_WORDS[g['colour']])} " if colour else ""
    if q == "a" and (c or _noun(g))[0] in "aeiou":
        q = "an"
    return f"{q} {c}{_noun(g)}"


def _short_candidates(gt: dict, rng) -> list[str]:
    cls, groups = gt["class"], gt["objects"]
    place, phrase = SCENE_PLACES[cls], CLASS_PHRASES[cls]
    out = []
    for g in groups:
        be = "is" if g["count"] == 1 else "are"
        out += [f"{_coarse(g, rng, True)} {be} {place}.",
                f"{phrase} with {_coarse(g, rng, True)}.",
                f"{_coarse(g, rng, False)} {be} seen {place}.",
                f"{phrase} where {_coarse(g, rng, True)} {'stands' if g['count'] == 1 else 'stand'}.",
                f"there {be} {_coarse(g, rng, True)} {place}."]
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            out += [f"{_coarse(a, rng, True)} and {_coarse(b, rng, True)} {place}.",
                    f"{phrase} with {_coarse(a, rng, False)} near {_coarse(b, rng, True)}."]
    return out


def write_short_captions(gt: dict, rng, n: int = N_SHORT) -> list[str]:
    """``n`` distinct RSICD-like short captions of a ground truth (see the module docstring)."""
    cands = [_cap(c) for c in dict.fromkeys(_short_candidates(gt, rng))]  # distinct, in drawn order
    if len(cands) < n:
        raise ValueError(f"write_short_captions: only {len(cands)} distinct captions for {gt['class']}; need {n}")
    return [cands[i] for i in sorted(rng.choice(len(cands), size=n, replace=False))]


def _alt_group(g: dict, rng) -> str:
    n = g["count"]
    num = str(n) if rng.random() < 0.6 else str(NUMBER_WORDS[n][0])
    return f"{num} {rng.choice(COLOUR_WORDS[g['colour']])} {_noun(g)}"


ALT_PREFIXES = ["satellite photo of", "aerial view showing", "high resolution remote sensing image of",
                "drone shot from above of"]


def _alt_relation(relation: str) -> str:
    """'above and to the left of' -> 'above left of' (terse alt-text)."""
    return relation.replace(" and to the", "").replace("to the ", "")


def write_alt_text(gt: dict, rng) -> str:
    """One alt-text-style pre-training caption (see the module docstring).

    The number of facts is 1, 2 or 3 with probabilities 0.55 / 0.3 / 0.15 (a fact: one group with
    its count, colour and possibly its position; two facts may instead be one order-sensitive
    relation between two groups); each group is mentioned at most once; the class (or one of its
    land-cover words) is named with probability 0.8, before or after the facts; one caption in ten
    carries a photo-style prefix ("satellite photo of"), which makes the thin tail of long ones."""
    cls, groups = gt["class"], gt["objects"]
    n_facts = min(int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15])), len(groups))
    facts, used = [], set()
    if n_facts >= 2 and gt["relations"] and rng.random() < 0.5:
        rel = gt["relations"][int(rng.integers(len(gt["relations"])))]
        a, b = groups[rel["subject"]], groups[rel["object"]]
        facts.append(f"{_alt_group(a, rng)} {_alt_relation(rel['relation'])} {_alt_group(b, rng)}")
        used |= {rel["subject"], rel["object"]}
    for i in (int(k) for k in rng.permutation(len(groups))):
        if len(used) >= n_facts:
            break
        if i in used:
            continue
        fact = _alt_group(groups[i], rng)
        if rng.random() < 0.6:
            fact += f" {ALT_POSITIONS[groups[i]['position']]}"
        facts.append(fact)
        used.add(i)
    text = ", ".join(facts)
    if rng.random() < 0.8:
        name = _NOUNS[cls] if rng.random() < 0.75 else str(rng.choice(LAND_COVER_WORDS[cls]))
        text = f"{name}, {text}" if rng.random() < 0.5 else f"{text} in {name}"
    if gt.get("mix") and rng.random() < 0.3:
        text = f"{text} next to {_NOUNS[gt['mix']['class']]}"
    if rng.random() < 0.1:
        text = f"{rng.choice(ALT_PREFIXES)} {text}"
    return text
