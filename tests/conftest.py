"""Shared fixtures: real stores in temp dirs, a real PostgreSQL server, a live HTTP server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from siyu.config import Settings
from siyu.services.context import Context
from tests.support.postgres import postgres_server
from tests.support.redis import RedisServer, redis_server
from tests.support.stores import empty_data_dir
from tests.support.tls import share_default_tls_context

share_default_tls_context()  # httpx.get/post/… load the CA bundle per call otherwise (see tests/support/tls.py)

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a real PostgreSQL server started for this test session."""
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    """A real Redis server (AOF on) started for this test session; ``redis.url``, ``redis.restart()``."""
    with redis_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Run a test against both state backends (fresh schema each time)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.sqlite'}"
        return
    base: str = request.getfixturevalue("pg_url")
    import sqlalchemy as sa

    from siyu.stores.state.db import make_engine

    engine = make_engine(base)
    with engine.begin() as con:
        con.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public;"))
    engine.dispose()
    yield base


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    """An open Context on fresh SQLite + DuckDB files (a copy of migrated empty stores: no migration per test)."""
    empty_data_dir(settings.data_dir)
    c = Context.open(settings)
    yield c
    c.close()


@pytest.fixture
def any_ctx(tmp_path: Path, state_url: str) -> Iterator[Context]:
    """An open Context whose state is SQLite or PostgreSQL (parametrised)."""
    empty_data_dir(tmp_path / "data")  # the SQLite state and the warehouse come migrated; PostgreSQL migrates
    c = Context.open(Settings(data_dir=tmp_path / "data", database_url=state_url))
    yield c
    c.close()


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip("../shared is not beside the checkout")
    return SHARED


DEMO_TEST_CUSTOMERS = 3000


@pytest.fixture(scope="session")
def demo_ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    """A Context holding the demo brand ``demo`` (3,000 customers, seed 42, OneID resolved), shared by the session.

    Read-only by convention: tests that change data seed their own brand."""
    from siyu.services.demo import DemoConfig, seed_demo

    c = Context.open(Settings(data_dir=tmp_path_factory.mktemp("demo") / "data"))
    seed_demo(c, DemoConfig(customers=DEMO_TEST_CUSTOMERS))
    yield c
    c.close()


@pytest.fixture(scope="session")
def retail_ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    """A Context with UCI Online Retail imported as brand ``retail`` (OneID resolved), shared by the session."""
    if not SHARED.exists():
        pytest.skip("../shared is not beside the checkout")
    from siyu.services import brands
    from siyu.services.imports import run_import

    c = Context.open(Settings(data_dir=tmp_path_factory.mktemp("retail") / "data"))
    brands.create_brand(c, "retail", "UCI Online Retail")
    job = run_import(c, "retail", "online-retail", SHARED / "data" / "online_retail" / "online_retail.csv.gz")
    assert job.status == "done", job.message
    yield c
    c.close()
