"""Fission campaigns (裂变活动: assist / group-buy / gift) — the use cases. Public functions:

Lifecycle (``definitions``): create, update, validate, pilot, launch, end, get, list_campaigns, versions.
Public pages (``participation``, ``teams``, ``gifts``): join, help, choose_reward, progress, by_token,
start_team, join_team, get_team, send_gift, claim_gift, get_gift; refusals raise ``Refused`` (``.code``,
Chinese message, ``.en``) or come back as ``{"state": "rejected", "reason", "message_zh", "message_en"}``.
Carrier (``wecom_hooks``, ``participation``): confirm_carrier, on_carrier_lost, revoke_help.
People (``people``): parse_identity, flush_observations. Operator reads (``reports``): participants, helps,
tree, record_visit, visits (per-guide targets: ``siyu.services.campaigns_stats.leaderboard``). Rewards go
through ``siyu.services.rewards`` (``payouts``).
"""

from siyu.services.campaigns.definitions import (
    create,
    end,
    get,
    launch,
    list_campaigns,
    pilot,
    update,
    validate,
    versions,
)
from siyu.services.campaigns.gifts import claim_gift, get_gift, on_redeemed, send_gift
from siyu.services.campaigns.participation import (
    Refused,
    by_token,
    choose_reward,
    confirm_carrier,
    help,
    help_async,
    join,
    on_carrier_lost,
    progress,
    revoke_help,
)
from siyu.services.campaigns.people import flush_observations, parse_identity
from siyu.services.campaigns.reports import helps, participants, record_visit, tree, visits
from siyu.services.campaigns.teams import expire_teams, get_team, join_team, start_team


def _register_redeem_hook() -> None:
    try:
        from siyu.services.rewards import on_redeem
    except ImportError:  # rewards not installed yet
        return
    on_redeem(on_redeemed)


_register_redeem_hook()

__all__ = [
    "Refused",
    "by_token",
    "choose_reward",
    "claim_gift",
    "confirm_carrier",
    "create",
    "end",
    "expire_teams",
    "flush_observations",
    "get",
    "get_gift",
    "get_team",
    "help",
    "help_async",
    "helps",
    "join",
    "join_team",
    "launch",
    "list_campaigns",
    "on_carrier_lost",
    "parse_identity",
    "participants",
    "pilot",
    "progress",
    "record_visit",
    "revoke_help",
    "send_gift",
    "start_team",
    "tree",
    "update",
    "validate",
    "versions",
    "visits",
]
