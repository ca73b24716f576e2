"""Count proactive transfer offers in a backtest's decisions: offers made before any explicit ask.

The sentiment trigger exists to offer a person *before* the customer asks for one (DESIGN.md
section 4). Given the `decisions.jsonl` a backtest wrote (`escalation backtest --out DIR` writes
`DIR/candidate/decisions.jsonl` and `DIR/baseline/decisions.jsonl`), this counts, per
conversation, whether a sentiment offer came before any decision with an explicit request.

    python bench/proactive_offers.py /tmp/bt/candidate/decisions.jsonl [more.jsonl ...]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def count(path: Path) -> dict[str, Any]:
    asked: set[str] = set()
    proactive: set[str] = set()
    then_asked: set[str] = set()
    offers = 0
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            decision = json.loads(line)
            conversation = decision["conversation_id"]
            triggers = {hit["trigger"] for hit in decision.get("triggers", ())}
            if decision["action"] == "offer_transfer" and "sentiment" in triggers:
                offers += 1
                if conversation not in asked:
                    proactive.add(conversation)
            if "explicit_request" in triggers:
                if conversation in proactive:
                    then_asked.add(conversation)
                asked.add(conversation)
    return {
        "decisions": str(path),
        "sentiment_offers": offers,
        "conversations_offered_before_any_explicit_request": len(proactive),
        "of_which_asked_for_a_person_later": len(then_asked),
        "conversations_with_an_explicit_request": len(asked),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("decisions", nargs="+", type=Path, help="decisions.jsonl of a backtest")
    args = parser.parse_args(argv)
    for path in args.decisions:
        print(json.dumps(count(path)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
