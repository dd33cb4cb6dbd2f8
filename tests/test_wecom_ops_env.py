"""Shared setup of the WeCom operations tests (no tests here): a brand synced from the local WeCom server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from siyu.domain.models import Role
from siyu.services import brands, segments
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.wecom.config import WeComConfig, set_config
from siyu.services.wecom.sync import sync_contacts
from tests.wecom_server import WeComServer, running, seed

TOKEN, KEY, CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wwlocal0000000001"
ADMIN = User(0, "acme", "ops", "ops", Role.ADMIN, None, "zh")


@dataclass
class Env:
    ctx: Context
    srv: WeComServer
    wecom: str

    def customer_of(self, ext: str) -> str:
        rows = self.ctx.warehouse.fetch(
            "SELECT customer_id FROM identities WHERE brand_id = 'acme' AND id_type = 'external_userid' "
            "AND id_value = ?",
            [ext],
        )
        return str(rows[0][0])

    def segment(self, exts: list[str], name: str = "目标客户") -> str:
        ids = [self.customer_of(e) for e in exts]
        return segments.create_segment(self.ctx, ADMIN, name, self.definition(ids)).id

    @staticmethod
    def definition(customer_ids: list[str]) -> dict[str, object]:
        return {"kind": "trait", "field": "customer_id", "op": "in", "value": customer_ids}


@contextmanager
def wecom_brand(ctx: Context, guides: int = 3, per_guide: int = 20, **server: float) -> Iterator[Env]:
    """Brand ``acme`` with guides g1..gN (WeCom guide0001..) and their contacts synced from a running server."""
    brands.create_brand(ctx, "acme", "Acme")
    srv = WeComServer(corpid=CORP, **server)  # type: ignore[arg-type]
    seed(srv.company, guides=guides, contacts_per_guide=per_guide)
    with ctx.warehouse.transaction() as cur:
        for i in range(1, guides + 1):
            cur.execute(
                "INSERT INTO guides (brand_id, guide_id, name, wecom_userid) VALUES ('acme', ?, ?, ?)",
                [f"g{i}", f"导购{i}", f"guide{i:04d}"],
            )
    with running(srv) as base:
        set_config(ctx, "acme", WeComConfig(CORP, TOKEN, KEY, secret="contact-secret", api_base=base))
        assert sync_contacts(ctx, "acme").wait_identities(120), "OneID did not resolve the synced contacts"
        yield Env(ctx, srv, base)
