"""The list of API routers mounted by create_app (each area adds its import here)."""

from __future__ import annotations

from fastapi import APIRouter


def all_routers() -> list[APIRouter]:
    routers: list[APIRouter] = []
    from siyu import public

    # public mobile pages /m/... (campaign, help, progress, team, gift, lottery) come first: routes are matched in
    # order, and a burst of helps should not test ~250 API routes per request first (they share no path)
    routers.append(public.router)
    from siyu.api import auth, customers

    routers += [auth.router, customers.router]
    from siyu.api import segment

    routers.append(segment.router)  # Segment-compatible ingestion /v1
    from siyu.api import write_keys

    routers.append(write_keys.router)  # /api/write-keys (admin)
    from siyu.api import ingest_status

    routers.append(ingest_status.router)  # ingest log status /api/ingest/status (admin)
    from siyu.api import imports

    routers.append(imports.router)  # file imports /api/imports (jobs on Huey)
    from siyu.api import oneid

    routers.append(oneid.router)  # OneID conflicts / split /api/oneid
    from siyu.api import metrics_value

    routers.append(metrics_value.router)  # customer value /api/metrics (RFM, AIPL, lifecycle, cohorts)
    from siyu.api import metrics_guides

    routers.append(metrics_guides.router)  # CAC/ROI, guide KPIs, anomalies /api/metrics
    from siyu.api import metrics_operations

    routers.append(metrics_operations.router)  # assets, performance, funnel, KPIs /api/metrics
    from siyu.api import segments

    routers.append(segments.router)  # customer segments /api/segments (+ the schedule registry's lifespan)
    from siyu.api import clv

    routers.append(clv.router)  # customer lifetime value /api/clv
    from siyu.api import wecom

    routers.append(wecom.router)  # WeCom callback URL + connection admin /api/wecom
    from siyu.api import wecom_codes

    routers.append(wecom_codes.router)  # channel codes (渠道活码): QR, stats, welcome/tag/invite log /api/wecom/codes
    from siyu.api import wecom_ops

    routers.append(wecom_ops.router)  # WeCom tags / tag rules, mass sends, inheritance /api/wecom/ops
    from siyu.api import wecom_welcome

    routers.append(wecom_welcome.router)  # welcome messages across codes: counts, preview, sends /api/wecom/welcome
    from siyu.api import messaging

    routers.append(messaging.router)  # SMS / email / webhooks outbox, dead letters, providers /api/messaging
    from siyu.api import journeys

    routers.append(journeys.router)  # journeys (SOP) + guide tasks /api/journeys
    from siyu.api import rewards

    routers.append(rewards.router)  # rewards, points, lottery / check-in / quiz, tiers /api/rewards
    from siyu.api import campaigns

    routers.append(campaigns.router)  # fission campaigns CRUD, launch, participants, helps, tree /api/campaigns
    from siyu.api import campaigns_stats

    routers.append(campaigns_stats.router)  # campaign live stats, leaderboard, fulfilment /api/campaigns/{id}/...
    from siyu.api import guide_work

    routers += guide_work.routers  # follow-ups, Moments, pool, scorecard /api/followups|moments|pool|guides
    from siyu.api import pool_forms

    routers.append(pool_forms.router)  # lead forms of the customer pool /api/pool/forms
    from siyu.api import scripts
    from siyu.sidebar import routes as sidebar_routes

    routers += [scripts.router, scripts.sidebar_router]  # scripts library /api/scripts, sidebar settings /api/sidebar
    routers.append(sidebar_routes.router)  # the guide's WeCom sidebar H5 /sidebar/{brand}/...
    from siyu.sidebar import verify as sidebar_verify

    routers.append(sidebar_verify.router)  # WeCom's trusted-domain verification file /WW_verify_<code>.txt
    from siyu.api import audit

    routers.append(audit.router)  # audit log of sensitive actions /api/audit (admin)
    from siyu.api import pii

    routers.append(pii.router)  # who may reveal personal data /api/pii/settings
    return routers
