"""Customers of the demo brand: when and where they were acquired, their profile and their identifiers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from siyu.services.demo.config import (
    CHANNELS,
    CITIES,
    GIVEN,
    MOBILE_PREFIXES,
    STORES,
    SURNAMES,
    DemoConfig,
)
from siyu.services.demo.text import BoolArray, IntArray, daytime_seconds, dec, join, nullify, opaque, pick

STORE_WEIGHTS = np.array([0.45, 0.30, 0.25])
# Salts keep the identifier spaces apart (each is a bijection of the customer index).
SALT_UNIONID, SALT_OPENID, SALT_ANON_A, SALT_ANON_B, SALT_EXTERNAL = 11, 12, 13, 14, 15
PHONE_MULT, PHONE_OFFSET, PHONE2_SHIFT = 48_271, 13_579_246, 50_000_000


def channel_index(channel_id: str) -> int:
    return next(i for i, c in enumerate(CHANNELS) if c.channel_id == channel_id)


MARKETPLACE = np.array([c.kind.value == "marketplace" for c in CHANNELS])
STORE_CHANNEL = channel_index("ch_store")


@dataclass
class People:
    """One chunk of customers; arrays are aligned by position (``idx`` is the global customer number)."""

    idx: IntArray
    acq_s: IntArray  # seconds since the window start
    channel: IntArray  # acquisition channel (index into CHANNELS)
    store: IntArray  # home store (index into STORES)
    name: pa.Array
    gender: pa.Array
    birthday: pa.Array  # date32
    city: pa.Array
    phone: pa.Array
    user_id: pa.Array  # Segment userId, every customer has one
    member: BoolArray
    member_id: pa.Array
    has_unionid: BoolArray
    unionid: pa.Array
    has_openid: BoolArray
    openid: pa.Array
    has_anon: BoolArray
    anonymous_id: pa.Array
    duplicate: BoolArray  # first orders with a second phone, identified later by unionid
    phone2: pa.Array

    def __len__(self) -> int:
        return len(self.idx)


def phones(idx: IntArray, rng: np.random.Generator) -> pa.Array:
    """Valid, unique mainland mobiles in E.164: +86, a real prefix, 8 digits that are a bijection of idx."""
    prefix = np.array(MOBILE_PREFIXES)[rng.integers(0, len(MOBILE_PREFIXES), size=len(idx))]
    digits = (idx.astype(np.int64) * PHONE_MULT + PHONE_OFFSET) % 100_000_000
    return join("+86", dec(prefix), dec(digits, 8))


def generate_people(cfg: DemoConfig, first: int, n: int, chunk: int) -> People:
    """Generate ``n`` customers numbered from ``first``."""
    rng = np.random.default_rng([cfg.seed, chunk, 1])
    r = cfg.rates
    idx = np.arange(first, first + n, dtype=np.int64)
    # Acquisition accelerates over the window (the private domain is growing).
    day = np.minimum((rng.beta(1.4, 1.0, size=n) * cfg.days).astype(np.int64), cfg.days - 1)
    acq_s = day * 86_400 + daytime_seconds(rng, n)
    shares = np.array([c.share for c in CHANNELS])
    channel = rng.choice(len(CHANNELS), size=n, p=shares / shares.sum())
    store = rng.choice(len(STORES), size=n, p=STORE_WEIGHTS)

    surname = np.array(list(SURNAMES))[rng.integers(0, len(SURNAMES), size=n)]
    given = np.array(list(GIVEN))
    g1 = given[rng.integers(0, len(given), size=n)]
    g2 = np.where(rng.random(n) < 0.6, given[rng.integers(0, len(given), size=n)], "")
    name = pa.array(np.strings.add(np.strings.add(surname, g1), g2))
    gender = pick(("female", "male"), (rng.random(n) < 0.12).astype(np.int64))
    age_days = rng.integers(18 * 365, 56 * 365, size=n)
    end_days = (cfg.end - date(1970, 1, 1)).days
    birthday = pa.array((end_days - age_days).astype(np.int32), type=pa.date32())
    home_city = np.array([CITIES.index(s[2]) for s in STORES])[store]
    city_idx = np.where(rng.random(n) < 0.7, home_city, rng.integers(0, len(CITIES), size=n))
    city = pick(CITIES, city_idx)

    member = rng.random(n) < r.member
    has_unionid = rng.random(n) < r.has_unionid  # WeCom adds get a unionid later in wecom.py
    has_openid = has_unionid & (rng.random(n) < r.openid / r.has_unionid)
    has_anon = rng.random(n) < r.anonymous_id
    duplicate = has_unionid & (rng.random(n) < r.duplicate)
    anon = join(
        opaque(idx, SALT_ANON_A, "", 8),
        "-",
        opaque(idx, SALT_ANON_A + 100, "", 4),
        "-4",
        opaque(idx, SALT_ANON_A + 200, "", 3),
        "-a",
        opaque(idx, SALT_ANON_B + 300, "", 3),
        "-",
        opaque(idx, SALT_ANON_B, "", 12),
    )
    return People(
        idx=idx,
        acq_s=acq_s,
        channel=channel,
        store=store,
        name=name,
        gender=gender,
        birthday=birthday,
        city=city,
        phone=phones(idx, rng),
        user_id=join("ly_", dec(idx + 1, 9)),
        member=member,
        member_id=nullify(join("M", dec(idx + 10_000_001, 9)), member),
        has_unionid=has_unionid,
        unionid=opaque(idx, SALT_UNIONID, "oLYu", 24),
        has_openid=has_openid,
        openid=nullify(opaque(idx, SALT_OPENID, "wx8f3a2c1d9e7b6a5f:oMP", 24), has_openid),
        has_anon=has_anon,
        anonymous_id=nullify(anon, has_anon),
        duplicate=duplicate,
        phone2=nullify(phones(idx + PHONE2_SHIFT, rng), duplicate),
    )
