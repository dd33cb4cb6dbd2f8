"""A guide's own customers counted in plain SQL, independently of ``siyu.services.customers.guide_scope``:
active WeCom relations ∪ current members of the customer groups the guide owns (``touchpoints.guide_id``)."""

from __future__ import annotations

from siyu.services.context import Context


def reachable_ids(ctx: Context, brand: str, guide_id: str) -> set[str]:
    """Customer ids a guide reaches (pool leads not included)."""
    rows = ctx.warehouse.fetch(
        "SELECT i.customer_id FROM relations r JOIN identities i ON i.brand_id = r.brand_id"
        " AND i.id_type = 'external_userid' AND i.id_value = r.external_userid"
        " WHERE r.brand_id = ? AND r.guide_id = ? AND r.state = 'active'"
        " UNION SELECT i.customer_id FROM group_members m JOIN touchpoints t ON t.brand_id = m.brand_id"
        " AND t.touchpoint_id = m.touchpoint_id JOIN identities i ON i.brand_id = m.brand_id"
        " AND i.id_type = m.id_type AND i.id_value = m.id_value"
        " WHERE m.brand_id = ? AND t.guide_id = ? AND m.left_at IS NULL",
        [brand, guide_id, brand, guide_id],
    )
    return {str(r[0]) for r in rows}
