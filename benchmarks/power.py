"""Power of the second experiment (docs/reproduction.md), from the noise measured in the first one.

    python benchmarks/power.py            # prints the table; writes benchmarks/results/power.json

Inputs are the first reproduction's measured paired differences to GRPO of the held-out avg@4 averaged after the
start (docs/reproduction.md, "mean after start − grpo": sd over 3 seeds of 3.2, 3.9, 3.8, 2.3 points for rlrt,
rlrt_all, teacher_up, rlsd) and its evaluation size (32 problems x 4 samples at 4 points after the start, accuracy
about 0.7). The smallest detectable difference is the true paired difference that a two-sided paired t-test at
alpha = 0.05 detects with power 0.8 over n seeds (noncentral t, scipy.stats.nct).

The second design evaluates more problems (``EVAL_PROBLEMS``) at a lower accuracy, so part of the first
experiment's spread -- the binomial noise of the evaluation itself -- shrinks; the "adjusted" column keeps the
rest (training noise) and adds the new design's evaluation noise. Both columns are estimates, not measurements.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from scipy import optimize, stats

FIRST_PAIRED_SD = {"rlrt": 3.2, "rlrt_all": 3.9, "teacher_up": 3.8, "rlsd": 2.3}  # points, n = 3 seeds
FIRST_EVAL = dict(samples_per_point=32 * 4, points=4, accuracy=0.70)
SECOND_EVAL = dict(samples_per_point=160 * 4, points=3, accuracy=0.30)
SEEDS = (3, 4, 5, 6, 8)


def min_detectable_difference(n: int, sd: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true mean difference (same units as ``sd``) a two-sided paired t-test over ``n`` pairs detects
    with probability ``power`` (noncentral t with ``n - 1`` degrees of freedom), in the direction of the effect."""
    df, crit = n - 1, stats.t.ppf(1 - alpha / 2, n - 1)

    def shortfall(delta: float) -> float:
        nc = delta / sd * math.sqrt(n)
        return stats.nct.sf(crit, df, nc) - power  # the opposite tail adds < 1e-3 at these differences

    return optimize.brentq(shortfall, 1e-6, 12 * sd)


def eval_sd_of_difference(samples_per_point: int, points: int, accuracy: float) -> float:
    """Binomial sd (points) of the difference of two arms' after-start means, ignoring the pairing by problem
    (an upper bound: shared problems cancel part of it)."""
    per_arm = math.sqrt(accuracy * (1 - accuracy) / (samples_per_point * points))
    return 100 * per_arm * math.sqrt(2)


def main() -> dict:
    first_eval = eval_sd_of_difference(**FIRST_EVAL)
    second_eval = eval_sd_of_difference(**SECOND_EVAL)
    rows = {}
    for arm, sd in FIRST_PAIRED_SD.items():
        training = math.sqrt(max(sd**2 - first_eval**2, 0.0))
        adjusted = math.sqrt(training**2 + second_eval**2)
        rows[arm] = {
            "paired_sd_measured": sd, "paired_sd_adjusted": round(adjusted, 2),
            "mdd_measured": {n: round(min_detectable_difference(n, sd), 1) for n in SEEDS},
            "mdd_adjusted": {n: round(min_detectable_difference(n, adjusted), 1) for n in SEEDS},
        }
    out = {"alpha": 0.05, "power": 0.8, "test": "two-sided paired t over seeds (noncentral t)",
           "eval_sd_first": round(first_eval, 2), "eval_sd_second": round(second_eval, 2), "arms": rows}
    path = Path(__file__).parent / "results" / "power.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"evaluation-noise sd of a paired difference: first design {first_eval:.1f}, second {second_eval:.1f} points")
    print("| vs grpo | paired sd (measured / adjusted) | " + " | ".join(f"n={n}" for n in SEEDS) + " |")
    print("|---|---|" + "---|" * len(SEEDS))
    for arm, row in rows.items():
        cells = " | ".join(f"{row['mdd_measured'][n]} / {row['mdd_adjusted'][n]}" for n in SEEDS)
        print(f"| {arm} | {row['paired_sd_measured']} / {row['paired_sd_adjusted']} | {cells} |")
    return out


if __name__ == "__main__":
    main()
