"""Definitions (formulas shown in the console and the API) of the predicted CLV fields and LTV/CAC.

The predictions themselves are computed by ``siyu.clv`` and stored by ``siyu.services.clv`` in ``clv_predictions``.
"""

from __future__ import annotations

from siyu.analytics.definitions import define

MODULE = "clv"

define(
    "clv.p_alive",
    "存活概率 P(alive)",
    "P(alive)",
    "模型（BG/NBD 等）给出的客户在校准期末仍为活跃客户的概率，依据其重复购买次数 x、最后购买时间 t_x 与观察时长 T",
    "probability that the customer is still active at the end of calibration, from the model (BG/NBD, …) given "
    "their repeat purchases x, recency t_x and age T",
    "ratio",
    MODULE,
)
define(
    "clv.expected_purchases",
    "预期购买次数",
    "Expected purchases",
    "未来 N 个月的条件期望购买次数 E[Y(t) | x, t_x, T]（N = 拟合时的预测期）",
    "conditional expected purchases in the next N months E[Y(t) | x, t_x, T] (N = the fit's horizon)",
    "count",
    MODULE,
)
define(
    "clv.expected_spend",
    "预期客单价",
    "Expected spend",
    "Gamma-Gamma 模型的条件期望每次消费 E[M | x, z̄] = (γ + x z̄) p / (p x + q − 1)；无复购客户为总体均值",
    "Gamma-Gamma conditional expected spend per purchase E[M | x, z̄] = (γ + x z̄) p / (p x + q − 1); the "
    "population mean for customers without repeat purchases",
    "currency",
    MODULE,
)
define(
    "clv.clv",
    "预测 CLV",
    "Predicted CLV",
    "Σ 每月预期购买次数增量 × 预期客单价 ÷ (1 + 月折现率)^k，k = 1..N 个月；月折现率 = (1 + 年折现率)^(1/12) − 1",
    "Σ monthly increments of expected purchases × expected spend ÷ (1 + monthly rate)^k, k = 1..N months; monthly "
    "rate = (1 + annual rate)^(1/12) − 1",
    "currency",
    MODULE,
)
define(
    "clv.clv_cac",
    "预测 LTV/CAC",
    "Predicted LTV/CAC",
    "期间获客客户的预测 CLV 之和 ÷ 客户数（无预测的客户计 0）÷ 获客成本 CAC（归因与 CAC 同获客报表）",
    "Σ predicted CLV of the customers acquired in the period ÷ customers (no prediction counts as 0) ÷ CAC "
    "(attribution and CAC as in the acquisition report)",
    "ratio",
    MODULE,
)
define(
    "clv.ltv_total_cac",
    "总 LTV/CAC",
    "Total LTV/CAC",
    "(已实现 LTV + 人均预测 CLV) ÷ CAC",
    "(realised LTV + predicted CLV per customer) ÷ CAC",
    "ratio",
    MODULE,
)
