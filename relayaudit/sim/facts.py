"""What simulated models "know": a small bank of short factual questions with one right answer.

A persona answers a bank question correctly with its own accuracy; questions outside the bank are
answered by a (seeded) guess. Later probe suites draw their factual items from public knowledge, and this
bank covers the same ground so the simulator can play both a strong and a weak model.
"""

from __future__ import annotations

import re

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Portugal": "Lisbon",
    "Japan": "Tokyo", "China": "Beijing", "India": "New Delhi", "Canada": "Ottawa", "Australia": "Canberra",
    "Brazil": "Brasília", "Argentina": "Buenos Aires", "Egypt": "Cairo", "Kenya": "Nairobi", "Nigeria": "Abuja",
    "Russia": "Moscow", "Turkey": "Ankara", "Greece": "Athens", "Sweden": "Stockholm", "Norway": "Oslo",
    "Finland": "Helsinki", "Poland": "Warsaw", "Austria": "Vienna", "Switzerland": "Bern", "Netherlands": "Amsterdam",
    "Belgium": "Brussels", "Ireland": "Dublin", "Mexico": "Mexico City", "Peru": "Lima", "Chile": "Santiago",
    "South Korea": "Seoul", "Thailand": "Bangkok", "Vietnam": "Hanoi", "Indonesia": "Jakarta", "New Zealand": "Wellington",
}  # fmt: skip
SYMBOLS = {
    "gold": "Au", "silver": "Ag", "iron": "Fe", "sodium": "Na", "potassium": "K", "lead": "Pb", "tin": "Sn",
    "copper": "Cu", "mercury": "Hg", "oxygen": "O", "hydrogen": "H", "carbon": "C", "nitrogen": "N", "helium": "He",
}  # fmt: skip
OTHER = {
    "how many continents are there": "7",
    "how many legs does a spider have": "8",
    "what is the largest planet in the solar system": "Jupiter",
    "what is the chemical formula of water": "H2O",
    "who wrote romeo and juliet": "William Shakespeare",
    "what is the boiling point of water in celsius at sea level": "100",
    "how many days are in a leap year": "366",
    "what is the square root of 144": "12",
    "what is the smallest prime number": "2",
    "which planet is known as the red planet": "Mars",
}


def lookup(question: str) -> str | None:
    """The bank's answer to a question, or None if the bank does not cover it."""
    text = question.strip().lower()
    capital = re.search(r"capital (?:city )?of ([a-z .]+?)\??$", text.split("\n")[0])
    if capital:
        for country, city in CAPITALS.items():
            if country.lower() == capital.group(1).strip():
                return city
    symbol = re.search(r"(?:chemical )?symbol (?:for|of) ([a-z]+)", text)
    if symbol and symbol.group(1) in SYMBOLS:
        return SYMBOLS[symbol.group(1)]
    key = re.sub(r"[^a-z0-9 ]", "", text.split("\n")[0]).strip()
    for question_text, answer in OTHER.items():
        if key.startswith(question_text):
            return answer
    return None


def all_answers() -> list[str]:
    """Every answer in the bank (wrong answers are drawn from these, so they look plausible)."""
    return [*CAPITALS.values(), *SYMBOLS.values(), *OTHER.values()]
