"""WeCom side of the demo: lead-in invitations, guide contacts (relations) with adds and losses, service
replies and customer-group memberships."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from siyu.services.demo.config import CHANNELS, GROUPS, DemoConfig
from siyu.services.demo.people import MARKETPLACE, SALT_EXTERNAL, STORE_CHANNEL, People, channel_index
from siyu.services.demo.text import BoolArray, IntArray, opaque

DAY = 86_400
GUIDES_PER_STORE = 4
SERVICE_WINDOW_DAYS = 7
LEAD_IN_WINDOW_DAYS = 3
# Where each acquisition channel's customers are invited to add a guide (渠道活码 of that channel).
LEAD_IN_CHANNEL = np.array([channel_index(c.lead_in) if c.lead_in else i for i, c in enumerate(CHANNELS)])
# WeCom add_way codes (1 scanned QR, 2 phone search, 3 card share, 201 shared by member) per lead-in channel.
ADD_WAY = {"ch_aicall": "2", "ch_referral": "3"}
ADD_WAY_CODES = np.array([int(ADD_WAY.get(c.channel_id, "1")) for c in CHANNELS])


@dataclass
class Wecom:
    """Per customer of a ``People`` chunk: invitation, relation with a guide, service reply, group."""

    invited: BoolArray
    invite_s: IntArray
    added: BoolArray
    added_s: IntArray
    guide: IntArray  # guide index 0..11 (meaningful where added)
    channel: IntArray  # lead-in channel of the relation (index into CHANNELS)
    add_way: IntArray
    lost: BoolArray
    lost_s: IntArray  # end of window where not lost
    lost_by_customer: BoolArray
    external_userid: pa.Array
    replied: BoolArray  # replied to the guide within SERVICE_WINDOW_DAYS of the add (服务成功)
    reply_s: IntArray
    group: IntArray  # index into GROUPS, -1 = none
    joined_s: IntArray
    left: BoolArray
    left_s: IntArray


def generate_wecom(cfg: DemoConfig, people: People, chunk: int) -> Wecom:
    """Invite, add, serve and lose contacts following ``cfg.rates``; marks added contacts as WeChat users."""
    rng = np.random.default_rng([cfg.seed, chunk, 2])
    r = cfg.rates
    n, end = len(people), cfg.seconds
    # Marketplace buyers are invited by the card in their parcel / an AI call a few days after the order.
    delay = np.where(MARKETPLACE[people.channel], rng.integers(DAY, 4 * DAY, size=n), rng.integers(60, 2 * DAY, n))
    invite_s = people.acq_s + delay
    invited = (rng.random(n) < r.invited) & (invite_s < end)
    added_s = np.minimum(invite_s + rng.integers(60, LEAD_IN_WINDOW_DAYS * DAY, size=n), end - 1)
    added = invited & (rng.random(n) < r.lead_in_success)
    own_store_guide = people.store * GUIDES_PER_STORE + rng.integers(0, GUIDES_PER_STORE, size=n)
    any_guide = rng.integers(0, GUIDES_PER_STORE * 3, size=n)
    guide = np.where(
        people.channel == STORE_CHANNEL, own_store_guide, np.where(rng.random(n) < 0.6, own_store_guide, any_guide)
    )
    channel = LEAD_IN_CHANNEL[people.channel]
    hazard = -np.log(1 - r.monthly_loss) / (30 * DAY)
    lost_s = added_s + rng.exponential(1 / hazard, size=n).astype(np.int64) + 1
    lost = added & (lost_s < end)
    lost_s = np.where(lost, lost_s, end)
    lost_by_customer = rng.random(n) < r.lost_by_customer
    # The guide's first reply: minutes mostly, sometimes days (median ≈ 20 min, 90th percentile ≈ 1.7 days, at most
    # the 7-day window). The same uniform draw as before, bent, so every later draw of the chunk is unchanged.
    window = SERVICE_WINDOW_DAYS * DAY
    u = (rng.integers(60, window, size=n) - 60) / (window - 60)
    reply_s = added_s + (60 * (window / 60) ** (u**1.6)).astype(np.int64)
    replied = added & (rng.random(n) < r.service_success) & (reply_s < lost_s)
    weights = np.array([3.0, 2.0, 1.5, 1.2, 1.0, 2.0])
    group = np.where(
        added & (rng.random(n) < r.group_join), rng.choice(len(GROUPS), size=n, p=weights / weights.sum()), -1
    )
    joined_s = added_s + rng.integers(60, 14 * DAY, size=n)
    group = np.where(joined_s < end, group, -1)
    left_s = joined_s + rng.exponential(240 * DAY, size=n).astype(np.int64) + 1
    left = (group >= 0) & (rng.random(n) < 0.3) & (left_s < end)
    people.has_unionid |= added  # WeCom reports a unionid for WeChat contacts
    return Wecom(
        invited=invited,
        invite_s=invite_s,
        added=added,
        added_s=added_s,
        guide=guide,
        channel=channel,
        add_way=ADD_WAY_CODES[channel],
        lost=lost,
        lost_s=lost_s,
        lost_by_customer=lost_by_customer,
        external_userid=opaque(people.idx, SALT_EXTERNAL, "wmLY", 28),
        replied=replied,
        reply_s=reply_s,
        group=group,
        joined_s=joined_s,
        left=left,
        left_s=left_s,
    )
