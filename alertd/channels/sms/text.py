"""Reading SMS text: code phrases, responder acknowledgements, segment counts. Pure functions."""

from __future__ import annotations

import re

from alertd.core.policy import CODE_ALPHABET, CODE_LENGTH

# normalise_phrase strips combining accents, but Kazakh letters are letters of their own (no decomposition).
# People without a Kazakh keyboard type the Russian letter instead, so both sides are folded to it.
_KAZAKH_FOLD = str.maketrans({"ә": "а", "ғ": "г", "қ": "к", "ң": "н", "ө": "о", "ұ": "у", "ү": "у", "һ": "х",
                              "і": "и", "ё": "е", "й": "и"})
_NOT_WORD = re.compile(r"[^\w]+")


def fold(normalised: str) -> str:
    """Fold text already passed through normalise_phrase: Kazakh letters to Russian ones, punctuation to spaces."""
    return " ".join(_NOT_WORD.sub(" ", normalised.translate(_KAZAKH_FOLD)).replace("_", " ").split())


def contains_phrase(normalised_text: str, normalised_phrase: str) -> bool:
    """Whether the message holds the code phrase as whole words (both sides already normalise_phrase'd)."""
    phrase = fold(normalised_phrase)
    if not phrase:
        return False
    return f" {phrase} " in f" {fold(normalised_text)} "


# A timer by SMS runs 1 minute to 24 hours, as one started from the phone app (service/timers.py).
TIMER_MAX_MINUTES = 24 * 60
_MINUTES = re.compile(r"^(.*) (\d{1,6})$")
_PIN = re.compile(r"^\s*(\d{4,64})\s*$", re.ASCII)


def timer_minutes(normalised_text: str, normalised_phrase: str) -> int | None:
    """The minutes of `<code phrase> <minutes>`: the message is the phrase and a whole number of minutes, nothing
    else (punctuation aside), 1 to 24 h. None otherwise: the phrase alone, or with anything else, raises her alert
    as it always has (both sides already normalise_phrase'd)."""
    phrase = fold(normalised_phrase)
    m = _MINUTES.match(fold(normalised_text))
    if not phrase or m is None or m.group(1) != phrase:
        return None
    minutes = int(m.group(2))
    return minutes if 1 <= minutes <= TIMER_MAX_MINUTES else None


def pin_only(text: str) -> str | None:
    """The PIN of a message that is only a PIN (4 to 64 digits 0-9, spaces around it aside); None otherwise."""
    m = _PIN.match(text)
    return m.group(1) if m else None


# Cyrillic letters that look like Latin ones in the code alphabet: a responder may type the code on a
# Cyrillic keyboard. Only look-alikes; nothing else is guessed.
_LOOKALIKE = str.maketrans({"А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "Р": "P", "С": "C",
                            "Т": "T", "Х": "X", "У": "Y", "Ү": "Y"})
_ACK = re.compile(
    rf"^\s*(?:(?:OK|ОК|OKAY|YES|ИӘ|ИА|ИЯ|ДА|ЖАРАЙДЫ)[\s,.:;!-]*)?([{CODE_ALPHABET}]{{{CODE_LENGTH}}})[\s.!]*$"
)


def parse_ack(text: str) -> str | None:
    """The dispatch code in a responder's reply: `CODE`, `OK CODE`, `ИӘ CODE` or `ДА CODE`; None otherwise."""
    upper = text.upper()
    m = _ACK.match(upper)
    if m is None:
        head, _, tail = upper.strip().rpartition(" ")
        m = _ACK.match(f"{head} {tail.translate(_LOOKALIKE)}" if head else tail.translate(_LOOKALIKE))
    return m.group(1) if m else None


# GSM 03.38 basic set plus the extension table (extension characters count twice).
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = set("^{}\\[~]|€\f")


def segments(text: str) -> tuple[str, int]:
    """The encoding an SMS needs and how many segments it takes: ('gsm7', n) or ('ucs2', n)."""
    if all(c in _GSM_BASIC or c in _GSM_EXT for c in text):
        units, single, multi = sum(2 if c in _GSM_EXT else 1 for c in text), 160, 153
        encoding = "gsm7"
    else:
        units, single, multi = len(text.encode("utf-16-le")) // 2, 70, 67
        encoding = "ucs2"
    if units <= single:
        return encoding, 1
    return encoding, -(-units // multi)
