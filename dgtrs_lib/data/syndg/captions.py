"""SynDG-RS captions: a ground truth -> a short caption and a long description.

* The **short caption** (at most ~15 words, RSICD-like) is one of four class templates: it
  carries class-level semantics only, never counts, colours or positions.
* The **long description** (about 65-95 words) states the layout, every object group (count,
  size, colour, position: several templates and synonyms), up to two relations between groups and
  the total count, in shuffled order, padded with class-specific filler sentences to 60-70+ words,
  so the facts that tell two images of one class apart sit at varying token positions, mostly
  beyond the miniature model's 32-token base context (the stand-in for CLIP's 77; paper
  arXiv:2503.19311, sections 1 and 3).

Design: :mod:`dgtrs_lib.data.syndg`.

Taught in: Dataset inspection: dual-granularity captions, real Sentinel-2 imagery and SeLo scenes (notebooks/01-dataset-inspection.ipynb)
"""
from __future__ import annotations

from dgtrs_lib.data.syndg.vocabulary import (
    CLASSES,
    COLOUR_WORDS,
    NUMBER_WORDS,
    OBJECT_TYPES,
    POSITION_WORDS,
    SIZE_NOUNS,
    SIZE_WORDS,
)

SHORT_TEMPLATES = {
    "airport": ["an airport with a runway surrounded by grass.", "this is an airport seen from above.",
                "a runway of an airport crosses the green land.", "an airport area with some facilities near the runway."],
    "harbor": ["a harbor with piers next to the water.", "this is a port beside the sea.",
               "a harbor where several piers reach into the water.", "some facilities stand in a harbor by the water."],
    "farmland": ["farmland divided into many fields.", "many green and brown fields form the farmland.",
                 "this is farmland with strips of crops.", "several rectangular fields of farmland."],
    "forest": ["a dense forest seen from above.", "many green trees form a forest.",
               "this is a forest with dark green trees.", "a piece of forest land."],
    "residential area": ["a residential area with roads between the lots.", "this is a residential area with streets.",
                         "many houses and roads in a residential area.", "a residential neighborhood crossed by roads."],
    "industrial area": ["an industrial area with gray buildings.", "this is an industrial area with large roofs.",
                        "several factories stand in an industrial area.", "a gray industrial zone seen from above."],
    "river": ["a river flows through the green land.", "this is a winding river between fields.",
              "a river crosses the image.", "a curved river with green banks."],
    "beach": ["a beach next to the sea.", "this is a sandy beach by the water.",
              "pale sand of a beach meets the blue sea.", "a stretch of beach along the coast."],
    "parking lot": ["a parking lot with marked spaces.", "this is a parking lot seen from above.",
                    "a large parking lot with painted lines.", "rows of parking spaces in a parking lot."],
    "stadium": ["a stadium with a green field and a track.", "this is a stadium with a running track.",
                "an oval stadium seen from above.", "a sports stadium with a playground inside."],
}
OPENERS = ["This aerial image shows {cls}.", "Seen from above, the scene is {cls}.",
           "A top-down satellite view of {cls}.", "The picture is a remote sensing image of {cls}.",
           "Here we look straight down on {cls}."]
CLASS_PHRASES = {c: ("an " if c[0] in "aeiou" else "a ") + c for c in CLASSES}
CLASS_PHRASES["farmland"] = "farmland"
FILLERS = {
    "airport": ["The surrounding ground is covered with short green grass.",
                "The runway surface is dark gray asphalt with a lighter taxiway beside it.",
                "There are no roads or houses around the airfield."],
    "harbor": ["The quay is paved with gray concrete.", "The water in the harbor is calm and dark blue.",
               "Long concrete piers reach out into the water."],
    "farmland": ["The fields alternate between green crops and brown soil.",
                 "The parcels are long straight strips of similar width.", "No roads cross the fields."],
    "forest": ["The trees form an irregular dark green canopy.", "Individual tree crowns cast small shadows.",
               "There are no roads through the woods."],
    "residential area": ["Narrow gray roads form a regular grid.", "Green lawns fill the space between the roads.",
                         "The blocks between the streets have similar sizes."],
    "industrial area": ["The ground is paved with gray concrete.", "Darker gray roofs of large buildings appear here and there.",
                        "There is almost no vegetation in the area."],
    "river": ["The banks of the river are green meadows.", "The water is dark blue and winds gently.",
              "There are no bridges over the river."],
    "beach": ["The sand is pale and smooth.", "Low dune vegetation lines the far edge of the sand.",
              "Small waves mark the border between sand and sea."],
    "parking lot": ["The asphalt is dark gray with light painted lines.", "The parking spaces are arranged in neat rows.",
                    "There are no trees in the parking lot."],
    "stadium": ["A reddish running track surrounds the green field.", "Gray paved ground surrounds the stadium.",
                "The field in the middle is bright green grass."],
}


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
    if cls == "river":
        d = "from left to right" if layout["flow"] == "horizontal" else "from top to bottom"
        return str(rng.choice([f"The river winds {d} across the image.", f"A river meanders {d}."]))
    if cls == "farmland":
        return f"The fields are arranged in {layout['stripes']} strips."
    if cls == "residential area":
        return "Straight roads cross the area in both directions."
    if cls == "parking lot":
        return f"The rows of parking spaces run {layout['rows']}ly."
    if cls == "stadium":
        return f"The oval field is oriented {layout['field']}ly."
    if cls == "industrial area":
        return "Several dark gray building blocks stand on the concrete."
    return "The forest is dense." if layout["density"] == "dense" else "The forest has a few open patches."


def _group_phrase(g: dict, rng, with_position: bool = True) -> str:
    n = g["count"]
    noun = g["type"] if n == 1 else OBJECT_TYPES[g["type"]][1]
    num = str(rng.choice(NUMBER_WORDS[n]))
    size = str(rng.choice(SIZE_WORDS[g["size"]]))
    colour = str(rng.choice(COLOUR_WORDS[g["colour"]]))
    pos = str(rng.choice(POSITION_WORDS[g["position"]]))
    be = "is" if n == 1 else "are"
    forms = [f"There {be} {num} {size} {colour} {noun} {pos}.",
             f"{pos[0].upper() + pos[1:]} {be} {num} {size} {colour} {noun}.",
             f"{num[0].upper() + num[1:]} {colour} {noun}, {SIZE_NOUNS[g['size']]} in size, {'sits' if n == 1 else 'sit'} {pos}.",
             f"We can see {num} {colour} {noun} {pos}; {'it is' if n == 1 else 'they are'} {size}."]
    return str(rng.choice(forms))


def _short_ref(g: dict, rng) -> str:
    noun = g["type"] if g["count"] == 1 else OBJECT_TYPES[g["type"]][1]
    return f"the {rng.choice(COLOUR_WORDS[g['colour']])} {noun}"


def write_captions(gt: dict, rng) -> tuple[str, str]:
    """(short caption, long description) for a ground truth; see the module docstring."""
    cls = gt["class"]
    short = str(rng.choice(SHORT_TEMPLATES[cls]))
    short = short[0].upper() + short[1:]
    opener = str(rng.choice(OPENERS)).format(cls=CLASS_PHRASES[cls])
    body = [_layout_sentence(cls, gt["layout"], rng)]
    body += [_group_phrase(g, rng) for g in gt["objects"]]
    for rel in gt["relations"][: (2 if len(gt["objects"]) < 3 else 1)]:
        a, b = gt["objects"][rel["subject"]], gt["objects"][rel["object"]]
        s = f"{_short_ref(a, rng)} {'is' if a['count'] == 1 else 'are'} {rel['relation']} {_short_ref(b, rng)}."
        body.append(s[0].upper() + s[1:])
    total = sum(g["count"] for g in gt["objects"])
    body.append(str(rng.choice([f"Altogether there are {total} objects in {len(gt['objects'])} colours.",
                                f"In total the image contains {total} objects of {len(gt['objects'])} different colours."])))
    order = rng.permutation(len(body))
    body = [body[i] for i in order]
    fillers = list(rng.permutation(FILLERS[cls]))
    target = int(rng.integers(60, 70))
    text = " ".join([opener] + body)
    while len(text.split()) < target and fillers:
        pos = int(rng.integers(1, len(body) + 1))
        body.insert(pos, str(fillers.pop()))
        text = " ".join([opener] + body)
    return short, text
