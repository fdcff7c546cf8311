"""The embedded example dataset: seeded, realistic customer-churn rows, no download.

Mixed types on purpose: numeric columns with missing values, text categoricals (one with
missing values), an id column to drop, and a binary target that depends non-linearly on
several columns, so that a model has something real to learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

TARGET = "churned"


def generate(rows: int, seed: int) -> pd.DataFrame:
    """``rows`` rows of churn-like data; the same ``seed`` gives the same frame."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = rows
    contract = rng.choice(["month-to-month", "one-year", "two-year"], n, p=[0.55, 0.25, 0.20])
    internet = rng.choice(["fiber", "dsl", "none"], n, p=[0.45, 0.35, 0.20])
    payment = rng.choice(
        ["electronic check", "mailed check", "bank transfer", "credit card"],
        n,
        p=[0.35, 0.2, 0.25, 0.2],
    ).astype(object)
    region = rng.choice(["north", "south", "east", "west", "central"], n)
    tenure = np.clip(rng.gamma(1.6, 18, n), 0, 72).round().astype(int)
    base = np.select([internet == "fiber", internet == "dsl"], [80.0, 55.0], 25.0)
    monthly = np.round(base + rng.normal(0, 12, n).clip(-20, 40), 2)
    total = np.round(monthly * tenure * rng.uniform(0.95, 1.05, n), 2)
    total[tenure == 0] = np.nan
    age = rng.integers(18, 86, n).astype(float)
    age[rng.random(n) < 0.03] = np.nan
    calls = rng.poisson(np.where(internet == "fiber", 1.8, 1.0))
    paperless = rng.choice(["yes", "no"], n, p=[0.6, 0.4])
    payment[rng.random(n) < 0.02] = None

    logit = (
        -1.2
        + 1.4 * (contract == "month-to-month")
        - 1.0 * (contract == "two-year")
        + 0.7 * (internet == "fiber")
        + 0.5 * (payment == "electronic check")
        - 0.045 * tenure
        + 0.012 * (monthly - 60)
        + 0.35 * np.minimum(calls, 5)
        + 0.3 * (paperless == "yes")
        + 0.4 * ((np.nan_to_num(age, nan=45) < 30) & (contract == "month-to-month"))
    )
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in range(n)],
            "age": age,
            "region": region,
            "tenure_months": tenure,
            "contract": contract,
            "internet_service": internet,
            "payment_method": pd.array(payment, dtype="str"),
            "paperless_billing": paperless,
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": calls,
            TARGET: churned,
        }
    )
