"""Worker process for ``MathVerifier``: JSON lines in (``{"gold", "pred"}``), JSON lines out.

It runs math-verify with its own ``signal.alarm`` timeouts disabled; the parent enforces the time bound by
killing this process, which works from any thread and any process (daemonic ones included).
"""

from __future__ import annotations

import json
import logging
import sys


def main() -> None:
    logging.disable(logging.WARNING)
    from math_verify import parse, verify

    def parse_boxed(text: str):
        return parse("\\boxed{" + text + "}", parsing_timeout=None)

    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        reply = {"gold_ok": False, "pred_ok": False, "correct": False, "error": None}
        try:
            gold = parse_boxed(request["gold"])
            reply["gold_ok"] = bool(gold)
            if gold:
                pred = parse_boxed(request["pred"])
                reply["pred_ok"] = bool(pred)
                reply["correct"] = bool(pred) and bool(verify(gold, pred, timeout_seconds=None))
        except Exception as exc:  # noqa: BLE001 -- any parser failure is a reply, never a dead worker
            reply["error"] = f"{type(exc).__name__}: {exc}"[:300]
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
