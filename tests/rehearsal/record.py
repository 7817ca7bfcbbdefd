"""`python -m tests.rehearsal.record <rehearsal work folder> <target folder>`: copies what a rehearsal recorded into
the folder the offline tests replay (tests/rehearsal/recorded/), keeping each distinct decision a role needed once."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

NOT_ROLES = ("administrator", "control-plane")


def distinct_role_decisions(lines: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for line in lines:
        record = json.loads(line)
        if record["principal"] in NOT_ROLES or record["principal"].startswith("service:"):
            continue
        key = json.dumps({k: record[k] for k in ("principal", "action", "resource", "context", "implied",
                                                   "allowed")}, sort_keys=True)
        seen.setdefault(key, None)
    return list(seen)


def main(arguments: list[str]) -> int:
    work, target = Path(arguments[0]), Path(arguments[1])
    for name in ("policies.json", "network.json", "flows.json"):
        shutil.copyfile(work / "recorded" / name, target / name)
    decisions = distinct_role_decisions((work / "authorization.jsonl").read_text().splitlines())
    (target / "decisions.jsonl").write_text("\n".join(decisions) + "\n")
    print(f"{len(decisions)} distinct decisions of roles; policies, network and flows copied to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
