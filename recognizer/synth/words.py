"""Text that real plates, doors and walls carry around a house number.

Name plates say a family or house name, street signs a street name; numbers come with "No.",
"#", "Apt" before them and "A", "bis" or "-2" after them; shops and signs add words of every
kind. The generator draws such text beside its numbers, unlabelled, so the detector learns
letters as background and the classifier's "not a digit" class learns every letter.

Every function here takes the generator's random stream and returns plain strings; nothing
is drawn.
"""
from __future__ import annotations

import numpy as np

UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LOWER = "abcdefghijklmnopqrstuvwxyz"
SYMBOLS = "#&-./'+:()*!?"
DIGIT_LIKE = frozenset("IlO|/!")
"""Characters that many fonts draw exactly like a digit (I, l, | and / like 1; O like 0): drawn
as text, but never taught as "not a digit", or a real 1 or 0 would be refused. Lower-case o is
not here: it is shorter than the digits beside it."""
"""Symbols seen on plates and signs (drawn where the font has them)."""

PREFIXES: tuple[str, ...] = (
    "No.", "No", "NO.", "Nr.", "Nr", "#", "Apt", "Apt.", "APT", "Unit", "UNIT", "Flat", "Suite", "Ste", "Bldg",
    "Haus", "Villa", "Block", "Lot", "Casa", "Door", "Gate", "Box", "PO Box",
)
"""Words written before a number."""

SUFFIXES: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "a", "b", "c", "d", "bis", "ter", "-A", "-B", "/A", "/B", "A-B")
"""Letters written after a number ("12A" reads "12": the letters are not labelled)."""

STREET_WORDS: tuple[str, ...] = (
    "Street", "STREET", "St.", "Road", "ROAD", "Rd", "Avenue", "Ave", "AVE", "Lane", "Ln", "Drive", "Dr", "Court",
    "Ct", "Place", "Pl", "Way", "Close", "Gardens", "Terrace", "Crescent", "Boulevard", "Blvd", "Square", "Hill",
    "Park", "Strasse", "Str.", "Weg", "Platz", "Gasse", "Rue", "Avenue", "Via", "Calle", "Plaza", "Straat", "Laan",
)
COMMON_WORDS: tuple[str, ...] = (
    "The", "House", "Cottage", "Lodge", "Manor", "Farm", "Mill", "Old", "New", "North", "South", "East", "West",
    "Welcome", "WELCOME", "Private", "PRIVATE", "Entrance", "Exit", "Office", "Shop", "Open", "Closed", "Bakery",
    "Cafe", "Hotel", "Bar", "Pharmacy", "Dental", "Clinic", "Bank", "Post", "POLICE", "Taxi", "Parking", "NO PARKING",
    "Deliveries", "Please", "Ring", "Bell", "Mail", "Letters", "Beware", "Dog", "Keep", "Clear", "Push", "Pull",
    "Family", "and", "&", "of", "Dr.", "Mr", "Mrs", "Ms",
)
"""Words of doors, shops and signs."""


def pseudo_word(rng: np.random.Generator, min_len: int = 2, max_len: int = 10) -> str:
    """A random word made of syllables; every letter of the alphabet can occur."""
    vowels, consonants = "aeiouy", "bcdfghjklmnpqrstvwxz"
    n = int(rng.integers(min_len, max_len + 1))
    out = []
    vowel = rng.random() < 0.3
    while len(out) < n:
        if rng.random() < 0.12:  # any letter at all, so rare ones appear too
            out.append(LOWER[int(rng.integers(26))])
        else:
            pool = vowels if vowel else consonants
            out.append(pool[int(rng.integers(len(pool)))])
        vowel = not vowel if rng.random() < 0.8 else vowel
    return "".join(out)


def cased(rng: np.random.Generator, word: str) -> str:
    """The word in capitals, title case or lower case (plates favour the first two)."""
    r = rng.random()
    if r < 0.45:
        return word.upper()
    if r < 0.9:
        return word[:1].upper() + word[1:]
    return word.lower()


def name(rng: np.random.Generator) -> str:
    """A family or house name: one or two pseudo-words, sometimes with a common word."""
    parts = [cased(rng, pseudo_word(rng, 3, 9))]
    r = rng.random()
    if r < 0.25:
        parts.append(cased(rng, pseudo_word(rng, 3, 9)))
    elif r < 0.35:
        parts.insert(0, str(rng.choice(["Mr", "Mrs", "Dr.", "The", "Fam.", "M.", "J."])))
    elif r < 0.45:
        parts.append(str(rng.choice(["House", "Cottage", "Lodge", "Villa", "Family", "& Co", "GmbH", "Ltd"])))
    return " ".join(parts)


def street(rng: np.random.Generator) -> str:
    """A street name: a pseudo-word and a street word."""
    w = cased(rng, pseudo_word(rng, 3, 10))
    s = str(rng.choice(STREET_WORDS))
    return f"{s} {w}" if s in ("Rue", "Via", "Calle", "Avenue") and rng.random() < 0.5 else f"{w} {s}"


def sign_text(rng: np.random.Generator) -> str:
    """Any line of text of a door, shop or sign."""
    r = rng.random()
    if r < 0.35:
        return name(rng)
    if r < 0.55:
        return street(rng)
    if r < 0.8:
        return " ".join(str(rng.choice(COMMON_WORDS)) for _ in range(int(rng.integers(1, 4))))
    if r < 0.92:
        return "".join(str(rng.choice(list(UPPER))) for _ in range(int(rng.integers(1, 4))))  # initials, codes
    return str(rng.choice(list(SYMBOLS + UPPER + LOWER)))


def prefix(rng: np.random.Generator) -> str:
    """Text before a number: a word, a block letter with a dash ("B-"), or a symbol."""
    r = rng.random()
    if r < 0.65:
        return str(rng.choice(PREFIXES))
    if r < 0.9:
        return str(rng.choice(list(UPPER))) + str(rng.choice(["-", "-", " ", "/"]))
    return str(rng.choice(list(SYMBOLS)))


def suffix(rng: np.random.Generator) -> str:
    """Letters after a number ("A", "bis", "-B")."""
    return str(rng.choice(SUFFIXES)) if rng.random() < 0.8 else str(rng.choice(list(UPPER + LOWER)))
