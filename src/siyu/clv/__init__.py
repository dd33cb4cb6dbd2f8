"""Customer lifetime value: BTYD purchase models (BG/NBD, MBG/NBD, Pareto/NBD), the Gamma-Gamma spend model,
discounted CLV and calibration/holdout validation. Pure numerical code (numpy/scipy), no I/O."""

from siyu.clv.mle import Fit
from siyu.clv.models import TRANSACTION_MODELS, transaction_model

__all__ = ["TRANSACTION_MODELS", "Fit", "transaction_model"]
