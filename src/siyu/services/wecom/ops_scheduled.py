"""The ``wecom.ops`` schedule: keep WeCom operations up to date without anyone pressing refresh.

For every brand with a WeCom secret: transfers with customers still waiting get ``transfer_result`` read (moving
relations once WeCom has), mass sends of the last ``RECENT_DAYS`` get confirmations and results, and every tag
rule is applied to its segment's current members (the segments themselves refresh on ``segments.refresh``).
One brand's failure is logged and does not stop the others.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.wecom import inheritance, mass_send, tag_rules
from siyu.services.wecom.config import client_for, get_config
from siyu.stores.state.models import BrandRow, utcnow
from siyu.stores.state.wecom_ops_models import (
    WeComMassSendRow,
    WeComTagRuleRow,
    WeComTransferCustomerRow,
    WeComTransferRow,
)

log = logging.getLogger(__name__)
RECENT_DAYS = 3


def refresh_brand(ctx: Context, brand_id: str) -> dict[str, int]:
    """Refresh one brand's waiting transfers, recent mass sends and tag rules; counts of each."""
    user = User(0, brand_id, "scheduler", "scheduler", Role.ADMIN, None, "zh")
    client = client_for(get_config(ctx, brand_id))
    since = utcnow() - timedelta(days=RECENT_DAYS)
    with ctx.sessions() as s:
        transfers = list(
            s.scalars(
                select(WeComTransferRow.id)
                .where(WeComTransferRow.brand_id == brand_id)
                .where(
                    WeComTransferRow.id.in_(
                        select(WeComTransferCustomerRow.transfer_id).where(WeComTransferCustomerRow.status == "waiting")
                    )
                )
            )
        )
        sends = list(
            s.scalars(
                select(WeComMassSendRow.id).where(
                    WeComMassSendRow.brand_id == brand_id, WeComMassSendRow.created_at >= since
                )
            )
        )
        rules = list(s.scalars(select(WeComTagRuleRow.id).where(WeComTagRuleRow.brand_id == brand_id)))
    for t in transfers:
        inheritance.refresh(ctx, user, t, client)
    for m in sends:
        mass_send.refresh(ctx, user, m, client)
    for r in rules:
        tag_rules.refresh_rule(ctx, user, r, client, refresh_segment=False)
    return {"transfers": len(transfers), "mass_sends": len(sends), "tag_rules": len(rules)}


def refresh_all(ctx: Context) -> dict[str, dict[str, int]]:
    """Every brand with a WeCom secret (the scheduled job)."""
    with ctx.sessions() as s:
        brands = [b.id for b in s.scalars(select(BrandRow)) if ((b.settings or {}).get("wecom") or {}).get("secret")]
    done: dict[str, dict[str, int]] = {}
    for b in brands:
        try:
            done[b] = refresh_brand(ctx, b)
        except Exception:  # one brand's failure must not stop the others
            log.exception("refreshing the WeCom operations of brand %s failed", b)
    return done
