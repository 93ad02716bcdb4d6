"""What responders read by SMS, in Kazakh, Russian and English: a code, a place, a deadline, never who she is.

Cyrillic text goes as UCS-2 (70 characters a segment, 67 when split), so every template here is written to stay
within two segments with the longest code, kind and coordinates (a test checks each one); a dispatch that names
its nearest place ("14 km NE of Zhanaarka", alertd/core/places.py) may take a third, never more: the place's name
is cut to PLACE_NAME_MAX characters.

A message about a drill (its payload says `drill: true`, docs/drills.md) starts with DRILL in the responder's
language, whatever the template; a drill is never urgent ("!!"), which leaves the marker room within two segments.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from alertd.core.places import describe

LANGUAGES = ("kk", "ru", "en")

KIND_LABEL = {
    "kk": {"police_post": "полиция", "crisis_centre": "дағдарыс орталығы", "mobile_unit": "жылжымалы топ"},
    "ru": {"police_post": "полиция", "crisis_centre": "кризисный центр", "mobile_unit": "моб. группа"},
    "en": {"police_post": "police", "crisis_centre": "crisis centre", "mobile_unit": "mobile unit"},
}

# The first word of every SMS about a drill: no responder may take a drill for a real alert, or the reverse.
DRILL_MARK = {"kk": "ЖАТТЫҒУ", "ru": "УЧЕНИЯ", "en": "DRILL"}

TEMPLATES = {
    "dispatch": {
        "kk": "{hp}ДАБЫЛ {code} {kind}: {place}{link} ±{acc}м. {time} ({zone}) дейін {code} деп жауап беріңіз",
        "ru": "{hp}ТРЕВОГА {code} {kind}: {place}{link} ±{acc}м. Подтвердите до {time} ({zone}): ответьте {code}",
        "en": "{hp}ALERT {code} {kind}: {place}{link} +/-{acc}m. Reply {code} to acknowledge by {time} ({zone})",
    },
    "cancelled": {
        "kk": "{code}: дабыл тоқтатылды. Шақыру жабылды.",
        "ru": "{code}: тревога отменена. Отбой.",
        "en": "{code}: alert cancelled. Stand down.",
    },
    "withdrawn": {
        "kk": "{code}: шақыру алынды, жақынырақ топ жіберілді.",
        "ru": "{code}: вызов снят, направлен ближайший наряд.",
        "en": "{code}: dispatch withdrawn, a nearer responder was sent.",
    },
    "stand_down": {
        "kk": "{code}: шақыруды басқа топ қабылдады.",
        "ru": "{code}: вызов принят другим нарядом. Отбой.",
        "en": "{code}: acknowledged by another responder. Stand down.",
    },
    "duress": {
        "kk": "!! {code}: ҚОРҚЫТУ. Тоқтату жалған, жалғастырыңыз.",
        "ru": "!! {code}: ПОД ПРИНУЖДЕНИЕМ. Отмена ложная, продолжайте.",
        "en": "!! {code}: DURESS. The cancel was forced; keep responding.",
    },
    "pin_guessing": {
        "kk": "!! {code}: бас тарту PIN-і бірнеше рет қате. Телефон басқа адамда болуы мүмкін, жалғастырыңыз.",
        "ru": "!! {code}: несколько неверных PIN отмены. Телефон может быть у другого, продолжайте.",
        "en": "!! {code}: repeated wrong cancel PINs; someone else may hold her phone. Keep responding.",
    },
    "drill_ended": {
        "kk": "{code}: жаттығу аяқталды. Шақыру жабылды.",
        "ru": "{code}: учения окончены. Отбой.",
        "en": "{code}: drill ended. Stand down.",
    },
    "ack_ok": {
        "kk": "{code} расталды.",
        "ru": "{code} подтверждён.",
        "en": "{code} acknowledged.",
    },
    "ack_inactive": {
        "kk": "{code} шақыруы енді белсенді емес.",
        "ru": "Вызов {code} уже не активен.",
        "en": "{code} is no longer active.",
    },
    "ack_unknown": {
        "kk": "{code} шақыруы бұл нөмір үшін табылмады.",
        "ru": "Вызов {code} не найден для этого номера.",
        "en": "No dispatch {code} for this number.",
    },
    "ack_help": {
        "kk": "Растау үшін шақыру кодын жіберіңіз, мысалы: ИӘ 7KX3QM",
        "ru": "Для подтверждения ответьте кодом вызова, например: ДА 7KX3QM",
        "en": "To acknowledge, reply with the dispatch code, e.g. OK 7KX3QM",
    },
    "other": {
        "kk": "{code}: шақыру өзгерді ({template}). Консольді қараңыз.",
        "ru": "{code}: изменение по вызову ({template}). См. консоль.",
        "en": "{code}: dispatch update ({template}). See the console.",
    },
}


PLACE_NAME_MAX = 32  # GeoNames names run to 200 characters; a dispatch SMS stays within three segments


def place_words(payload: dict[str, Any], language: str) -> str:
    """"14 km NE of Zhanaarka, " for a dispatch that names its nearest place, "" for one that does not."""
    place = payload.get("place")
    if not isinstance(place, dict) or not place.get("asciiname"):
        return ""
    short = {k: (v[:PLACE_NAME_MAX].rstrip() if isinstance(v, str) and k.startswith(("name", "ascii")) else v)
             for k, v in place.items()}
    return f"{describe(short, language)}, "


def language_of(value: object) -> str:
    return value if value in LANGUAGES else "ru"


def maps_link(lat: float, lon: float) -> str:
    """A short link every phone opens; coordinates already rounded to ~100 m by the dispatch payload."""
    return f"maps.google.com/?q={lat:.3f},{lon:.3f}"


def zone_label(when: datetime) -> str:
    """UTC+5 rather than a zone name a keypad phone user may not know."""
    offset = when.utcoffset()
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
    return f"UTC{sign}{minutes // 60}" + (f":{minutes % 60:02d}" if minutes % 60 else "")


def render(template: str, payload: dict[str, Any], language: str | None = None, tz: tzinfo = UTC) -> str:
    """The SMS text for an outbox message to a responder; the deadline in the responders' local time `tz`."""
    lang = language_of(language or payload.get("language"))
    texts = TEMPLATES.get(template, TEMPLATES["other"])
    values = {"code": payload.get("code", "?"), "template": template}
    drill = payload.get("drill") is True
    if template == "dispatch":
        deadline = payload.get("deadline")
        when = datetime.fromisoformat(deadline).astimezone(tz) if isinstance(deadline, str) else None
        values.update(
            hp="!! " if not drill and (payload.get("priority") == "high" or payload.get("duress")) else "",
            kind=KIND_LABEL[lang].get(payload.get("kind", ""), payload.get("kind", "")),
            place=place_words(payload, lang),
            link=maps_link(float(payload["lat"]), float(payload["lon"])),
            acc=payload.get("accuracy_m") if payload.get("accuracy_m") is not None else "?",
            time=when.strftime("%H:%M") if when else "--:--",
            zone=zone_label(when) if when else "UTC",
        )
    text = texts[lang].format(**values)
    return f"{DRILL_MARK[lang]}: {text}" if drill else text


# What alertd may ever text her own phone, and only if she opted in (`people.opt_in_sms`). Someone else may read
# her messages: each text is neutral, says nothing of alertd, alerts, help or where she is (docs/privacy.md).
TO_HER = {
    "self_test": {
        "kk": "Тексеру орындалды. Бәрі дұрыс.",
        "ru": "Проверка выполнена. Всё в порядке.",
        "en": "Check complete. All is well.",
    },
}


def render_to_her(template: str, payload: dict[str, Any]) -> str | None:
    """Her own text for an outbox message to her phone, or None: nothing else is ever sent to her."""
    texts = TO_HER.get(template)
    return None if texts is None else texts[language_of(payload.get("language"))]
