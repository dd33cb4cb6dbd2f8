"""The demo brand generator (澜颜美妆 Lanyan Beauty): deterministic synthetic data for every area to use."""

from siyu.services.demo.config import DemoConfig, Rates
from siyu.services.demo.seed import DemoLogin, SeedResult, demo_logins, seed_demo, seeded_info

__all__ = ["DemoConfig", "DemoLogin", "Rates", "SeedResult", "demo_logins", "seed_demo", "seeded_info"]
