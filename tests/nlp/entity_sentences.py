"""A small labelled check of entity models: everyday and news sentences with the
people, organisations and places in them (OntoNotes labels: PERSON, ORG, GPE,
LOC), written here, not taken from any model's training data."""

from __future__ import annotations

# (sentence, [(span text, label), ...]): every PERSON / ORG / GPE / LOC in it.
SENTENCES: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Ada Lovelace worked with Charles Babbage in London.",
        [("Ada Lovelace", "PERSON"), ("Charles Babbage", "PERSON"), ("London", "GPE")],
    ),
    (
        "Angela Merkel met Emmanuel Macron in Berlin on Tuesday.",
        [("Angela Merkel", "PERSON"), ("Emmanuel Macron", "PERSON"), ("Berlin", "GPE")],
    ),
    ("Microsoft is buying a startup based in Seattle.", [("Microsoft", "ORG"), ("Seattle", "GPE")]),
    ("My sister moved from Toronto to Madrid last year.", [("Toronto", "GPE"), ("Madrid", "GPE")]),
    ("The United Nations held a summit in Geneva.", [("The United Nations", "ORG"), ("Geneva", "GPE")]),
    ("Apple and Google both reported higher profits.", [("Apple", "ORG"), ("Google", "ORG")]),
    ("Barack Obama was born in Hawaii.", [("Barack Obama", "PERSON"), ("Hawaii", "GPE")]),
    ("We hiked along the Danube and then drove to Vienna.", [("Danube", "LOC"), ("Vienna", "GPE")]),
    ("Serena Williams won her first title at the US Open.", [("Serena Williams", "PERSON")]),
    ("Toyota opened a new factory in Texas.", [("Toyota", "ORG"), ("Texas", "GPE")]),
    (
        "Marie Curie studied physics at the University of Paris.",
        [("Marie Curie", "PERSON"), ("the University of Paris", "ORG")],
    ),
    (
        "The World Health Organization warned about a flu outbreak in India.",
        [("The World Health Organization", "ORG"), ("India", "GPE")],
    ),
]
KINDS = ("PERSON", "ORG", "GPE", "LOC")


def score(found: list[list[tuple[str, str]]]) -> tuple[float, float]:
    """(precision, recall) of the found (text, label) pairs of KINDS, exact span and label;
    a leading "the" is ignored either way (OntoNotes is not consistent about it)."""

    def norm(pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        return {(t.lower().removeprefix("the "), label) for t, label in pairs if label in KINDS}

    hits = claimed = wanted = 0
    for (_, gold), got in zip(SENTENCES, found, strict=True):
        g, f = norm(gold), norm(got)
        hits += len(g & f)
        claimed += len(f)
        wanted += len(g)
    return hits / max(claimed, 1), hits / max(wanted, 1)
