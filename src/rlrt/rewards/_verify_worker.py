"""Worker process for ``MathVerifier``: JSON lines in (``{"gold", "pred"}``), JSON lines out.

Each request carries a time bound. This process's main thread interrupts a slow comparison itself with
``SIGALRM`` (sympy loops in Python stop there, and the worker lives on); a computation stuck inside C code
cannot be interrupted that way, so the parent also kills this process a little after the bound. Math-verify's
own ``signal.alarm`` timeouts are disabled (they only work on a main thread of the *calling* process).
"""

from __future__ import annotations

import json
import logging
import signal
import sys


class ItemTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise ItemTimeout()


def main() -> None:
    logging.disable(logging.WARNING)
    from math_verify import parse, verify

    def parse_boxed(text: str):
        return parse("\\boxed{" + text + "}", parsing_timeout=None)

    signal.signal(signal.SIGALRM, _on_alarm)
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        reply = {"gold_ok": False, "pred_ok": False, "correct": False, "error": None, "timeout": False}
        signal.setitimer(signal.ITIMER_REAL, float(request.get("timeout", 3.0)))
        try:
            gold = parse_boxed(request["gold"])
            reply["gold_ok"] = bool(gold)
            if gold:
                pred = parse_boxed(request["pred"])
                reply["pred_ok"] = bool(pred)
                reply["correct"] = bool(pred) and bool(verify(gold, pred, timeout_seconds=None))
        except ItemTimeout:
            reply["timeout"] = True
        except Exception as exc:  # noqa: BLE001 -- any parser failure is a reply, never a dead worker
            reply["error"] = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
