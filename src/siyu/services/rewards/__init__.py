"""Rewards: coupons, points, physical gifts, virtual goods — stock that never oversells, grants, claw-back,
coupon redemption, fulfilment and the points ledger.

The contract the campaign core (and lottery / check-in / quiz) codes against::

    grant(ctx, brand_id, reward_id, customer_id, *, source, source_ref, idempotency_key) -> dict
        # {"grant_id", "reward_id", "status", "cost", "code", "value", "expires_at", ...}; atomic stock
        # decrement, same key -> same grant; raises RewardUnavailable (a Conflict: .reward_id, .reason =
        # out_of_stock | budget | inactive | expired | not_found)
    claw_back(ctx, brand_id, grant_id, reason) -> dict
    get_reward(ctx, brand_id, reward_id) -> dict | None
    reward_cost(ctx, brand_id, source, source_ref=None) -> float
    on_redeem(hook)   # hook(ctx, grant_dict) runs after a coupon is redeemed (gift bonus "when the friend uses it")
    redeem(ctx, brand_id, order_id=..., code=... | grant_id=..., order_amount=...)
"""

from siyu.services.rewards.catalog import (
    add_codes,
    create_reward,
    delete_reward,
    get_reward,
    list_rewards,
    require_reward,
    top_up,
    update_reward,
)
from siyu.services.rewards.grants import (
    RewardUnavailable,
    claw_back,
    get_grant,
    grant,
    list_grants,
    mark_shipped,
    on_redeem,
    redeem,
    remove_redeem_hook,
    reward_cost,
    set_address,
)
from siyu.services.rewards.points import InsufficientPoints

__all__ = [
    "InsufficientPoints",
    "RewardUnavailable",
    "add_codes",
    "claw_back",
    "create_reward",
    "delete_reward",
    "get_grant",
    "get_reward",
    "grant",
    "list_grants",
    "list_rewards",
    "mark_shipped",
    "on_redeem",
    "redeem",
    "remove_redeem_hook",
    "require_reward",
    "reward_cost",
    "set_address",
    "top_up",
    "update_reward",
]
