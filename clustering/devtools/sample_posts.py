"""Posts for the demo sample: a French or English text, a date and an account for every image row.

Each image kind is a topic with its own hashtag, words and emoji, posted over four weeks with one burst day, mostly by a
few accounts of its own. Viral images are reposted, hours to days later, mostly by one relay account (the
coordinated-posting signal that a high top-account share reveals). Three other accounts post the same few pictures
within seconds of each other, on different days (what the "Posted together" analysis finds). Some texts mention another
account, link a URL or carry emoji, and a few dates are missing, so every part of the post analysis has something to
find.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

__all__ = [
    "ACCOUNTS",
    "RELAY_ACCOUNT",
    "START",
    "THEMES",
    "TOGETHER_ACCOUNTS",
    "Theme",
    "after",
    "caption",
    "posting_account",
    "posting_time",
    "repost_time",
    "theme_of",
    "together_time",
]


@dataclasses.dataclass(frozen=True)
class Theme:
    """What the posts about one image kind say, when they burst and who posts them."""

    hashtag: str
    french: tuple[str, ...]
    english: tuple[str, ...]
    emoji: str
    burst_day: int  # days after START
    accounts: tuple[str, ...]


START = dt.datetime(2025, 8, 25, tzinfo=dt.timezone(dt.timedelta(hours=2)))  # a Monday, Paris summer time
SPAN_DAYS = 28
BURST_SHARE = 0.5  # posts of a kind that fall on its burst day
HOME_SHARE = 0.7  # posts of a kind written by one of its own accounts
MISSING_DATE_SHARE = 0.02
RELAY_ACCOUNT = "relais_info_24"
RELAY_SHARE = 0.6  # reposts of viral images pushed by the relay account
# Accounts that post the same pictures within seconds of each other (sample.TOGETHER_IMAGES of them), the first
# account first, one picture every TOGETHER_EVERY_DAYS days from day TOGETHER_FIRST_DAY, mid-morning.
TOGETHER_ACCOUNTS = ("echo_relay_1", "echo_relay_2", "echo_relay_3")
TOGETHER_FIRST_DAY = 4
TOGETHER_EVERY_DAYS = 6

THEMES = {
    "gradient": Theme("#coucherdesoleil", ("ciel", "lumière", "soirée", "horizon"), ("sunset", "sky", "evening",
                      "glow"), "🌅", 3, ("lea_photo", "skywatcher")),
    "stripes": Theme("#mode", ("rayures", "tissu", "marinière", "défilé"), ("stripes", "fabric", "fashion",
                     "runway"), "👗", 8, ("atelier_marine", "stylefiles")),
    "checkerboard": Theme("#échecs", ("échiquier", "partie", "tournoi", "damier"), ("chess", "board", "tournament",
                          "checkmate"), "♟️", 12, ("club_echecs_lyon", "gambit_daily")),
    "circles": Theme("#vinyle", ("disque", "platine", "album", "musique"), ("vinyl", "record", "album", "music"),
                     "🎶", 17, ("disquaire_paris", "wax_collector")),
    "noise": Theme("#brouillard", ("brume", "texture", "grain", "matin"), ("fog", "texture", "grain", "morning"),
                   "🌫️", 21, ("meteo_alpes", "mistyframes")),
    "shapes": Theme("#bloquonstout", ("manif", "affiche", "grève", "rassemblement"), ("protest", "poster",
                    "strike", "rally"), "✊", 16, ("collectif_10sept", "syndicat_sud")),
}  # fmt: skip
BROKEN_THEME = Theme("#archives", ("lien", "image"), ("link", "image"), "🔗", 5, ("archiviste",))
ACCOUNTS = tuple(sorted({a for t in (*THEMES.values(), BROKEN_THEME) for a in t.accounts} | {RELAY_ACCOUNT}))

_FRENCH_FRAMES = ("{w1} et {w2} ce soir", "encore : {w1} aujourd'hui", "regardez : {w1} !", "{w1} de la semaine",
                  "{w1}, {w2}… incroyable", "on partage : {w1}")  # fmt: skip
_ENGLISH_FRAMES = ("{w1} and {w2} tonight", "more {w1} today", "look at this {w1}!", "{w1} of the week",
                   "what a {w1}", "sharing this {w1} and {w2}")  # fmt: skip


def theme_of(kind: str) -> Theme:
    return THEMES.get(kind, BROKEN_THEME)


def caption(rng: np.random.Generator, kind: str) -> str:
    """A post text about ``kind``: French or English, often its hashtag, sometimes a mention, emoji or link."""
    theme = theme_of(kind)
    french = rng.uniform() < 0.6
    words = theme.french if french else theme.english
    frame = str(rng.choice(_FRENCH_FRAMES if french else _ENGLISH_FRAMES))
    w1, w2 = (str(w) for w in rng.choice(words, size=2, replace=False))
    parts = [frame.format(w1=w1, w2=w2)]
    if rng.uniform() < 0.75:
        parts.append(theme.hashtag)
    if rng.uniform() < 0.25:
        parts.append("@" + str(rng.choice(ACCOUNTS)))
    if rng.uniform() < 0.3:
        parts.append(theme.emoji * int(rng.integers(1, 3)))
    if rng.uniform() < 0.15:
        parts.append(f"https://exemple.fr/p/{int(rng.integers(1000, 9999))}")
    return " ".join(parts)


def posting_time(rng: np.random.Generator, kind: str) -> dt.datetime | None:
    """When a post about ``kind`` went out: half on its burst day, the rest over the four weeks; a few unknown."""
    if rng.uniform() < MISSING_DATE_SHARE:
        return None
    day = theme_of(kind).burst_day if rng.uniform() < BURST_SHARE else int(rng.integers(0, SPAN_DAYS))
    return START + dt.timedelta(days=day, minutes=int(rng.integers(7 * 60, 23 * 60)))


def repost_time(rng: np.random.Generator, original: dt.datetime | None) -> dt.datetime | None:
    """A repost goes out one hour to three days after the original (unknown when the original's date is)."""
    if original is None:
        return None
    return original + dt.timedelta(minutes=int(rng.integers(60, 3 * 24 * 60)))


def posting_account(rng: np.random.Generator, kind: str, *, repost: bool = False) -> str:
    """Who posted: for a repost mostly the relay account; otherwise mostly one of the kind's own accounts."""
    if repost and rng.uniform() < RELAY_SHARE:
        return RELAY_ACCOUNT
    if not repost and rng.uniform() < HOME_SHARE:
        return str(rng.choice(theme_of(kind).accounts))
    return str(rng.choice(ACCOUNTS))


def together_time(k: int) -> dt.datetime:
    """When the first account of TOGETHER_ACCOUNTS posts the k-th picture they post together."""
    return START + dt.timedelta(days=TOGETHER_FIRST_DAY + TOGETHER_EVERY_DAYS * k, hours=1, minutes=17)


def after(moment: dt.datetime, seconds: int) -> dt.datetime:
    return moment + dt.timedelta(seconds=seconds)
