"""`siyu wecom behavior-sync`: WeCom's 联系客户统计 (get_user_behavior_data) per guide and day."""

from __future__ import annotations

import json

import typer

from siyu.cli.common import console, open_context
from siyu.services.brands import get_brand
from siyu.services.guide_work import behavior
from siyu.services.wecom.config import client_for, get_config


def behavior_sync(
    brand: str,
    days: int = typer.Option(behavior.SCHEDULED_DAYS, "--days", help="days up to yesterday to read (1..180)"),
) -> None:
    """Read WeCom's 联系客户统计 (chats, reply share and time, 删除/拉黑) per guide and day (one call per guide and
    30 days) for the guide scorecard; the daily job does the last 3 days."""
    with open_context() as ctx:
        get_brand(ctx, brand)
        behavior.check_days(days)
        client = client_for(get_config(ctx, brand))
        try:
            got = behavior.sync(ctx, brand, client, days)
        finally:
            client.close()
        console.print_json(json.dumps(got, ensure_ascii=False))
