"""The test-support templates: copied stores are complete and private to their test; httpx shares one default TLS
context but still builds what a caller asks for."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from siyu.config import Settings
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.demo import DemoConfig, seeded_info
from tests.support.stores import empty_data_dir, open_demo

CFG = DemoConfig(customers=200)  # the hostile tests' brand: in a whole run this seeds nothing extra


def test_demo_copies_are_complete_and_private(tmp_path: Path) -> None:
    a, b = open_demo(tmp_path / "a", CFG), open_demo(tmp_path / "b", CFG)
    try:
        for c in (a, b):
            assert seeded_info(c, "demo") is not None
            assert c.warehouse.fetch("SELECT count(DISTINCT customer_id) FROM customers WHERE brand_id = 'demo'") == [
                (CFG.customers,)
            ]
        brands.create_brand(a, "only-a", "Only in copy a")
        with a.warehouse.transaction() as cur:
            cur.execute("DELETE FROM customers WHERE brand_id = 'demo'")
        assert "only-a" in {x.id for x in brands.list_brands(a)}
        assert "only-a" not in {x.id for x in brands.list_brands(b)}
        assert b.warehouse.fetch("SELECT count(*) FROM customers WHERE brand_id = 'demo'")[0][0] == CFG.customers
    finally:
        a.close()
        b.close()


def test_empty_copy_is_migrated_and_refuses_to_overwrite(tmp_path: Path) -> None:
    data = empty_data_dir(tmp_path / "data")
    ctx = Context.open(Settings(data_dir=data))
    try:
        assert brands.list_brands(ctx) == []
    finally:
        ctx.close()
    with pytest.raises(FileExistsError, match="not empty"):
        empty_data_dir(data)


def test_httpx_default_tls_context_is_shared_but_verify_is_honoured() -> None:
    def context(client: httpx.Client) -> ssl.SSLContext:
        return client._transport._pool._ssl_context  # type: ignore[attr-defined]

    with httpx.Client() as one, httpx.Client() as two, httpx.Client(verify=False) as off:
        assert context(one) is context(two)
        assert context(one).verify_mode == ssl.CERT_REQUIRED and context(one).check_hostname
        assert context(off) is not context(one) and context(off).verify_mode == ssl.CERT_NONE
