"""Fission campaigns (裂变活动), pure: the definition (``definition``), its validation (``validate``) and the rules
(``rules``: may help, tiers, teams, depth, variants, pilot)."""

from siyu.domain.campaign.definition import CampaignDefinition
from siyu.domain.campaign.rules import REASONS, Decision
from siyu.domain.campaign.validate import CampaignError, parse_campaign

__all__ = ["REASONS", "CampaignDefinition", "CampaignError", "Decision", "parse_campaign"]
