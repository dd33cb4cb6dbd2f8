"""CLV use cases (客户终身价值): fit a brand's orders, store per-customer predictions, validate on a holdout,
aggregate predicted value next to CAC, and refit on a schedule.

Modules: ``fitting`` (fit + store), ``predictions`` (read, scoped to the user), ``validation`` (calibration /
holdout), ``ltv_cac`` (CLV per channel, guide, campaign next to CAC), ``scheduled`` (periodic refit).
The numerical models are in ``siyu.clv``; the summary (x, t_x, T, z̄) in ``siyu.analytics.clv_summary``.
"""

from __future__ import annotations

from siyu.analytics import clv_fields  # noqa: F401 - registers the definitions of the predicted fields
from siyu.services.clv.fitting import DEFAULT_MODEL, MODELS, FitOptions, fit_brand, get_fit, latest_fit, list_fits

__all__ = ["DEFAULT_MODEL", "MODELS", "FitOptions", "fit_brand", "get_fit", "latest_fit", "list_fits"]
