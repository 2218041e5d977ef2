"""Print the mutation score of each mutated module from mutmut's results (`make mutants`).

mutmut keeps one `mutants/<module path>.meta` JSON file per mutated module, with the exit
code of the tests run against each mutant; this turns them into killed / total per module and
names the survivors (see one with `.venv/bin/mutmut show <name>`).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

# mutmut's exit codes (mutmut/stats.py): the tests failed, ran out of time, or a type check
# caught the change: killed. 0: every test passed: survived.
KILLED = {1, 3, 37}
TIMEOUT = {36, 24, -24, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}
SKIPPED = {34}


def classify(exit_code: int | None) -> str:
    if exit_code is None:
        return "not checked"
    for name, codes in (("killed", KILLED), ("timeout", TIMEOUT), ("survived", SURVIVED),
                        ("no tests", NO_TESTS), ("skipped", SKIPPED)):
        if exit_code in codes:
            return name
    return "suspicious"


def scores(root: Path) -> dict[str, tuple[Counter[str], list[str]]]:
    """Per module: the count of each outcome, and the names of the surviving mutants."""
    result: dict[str, tuple[Counter[str], list[str]]] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        module = str(meta.relative_to(root))[: -len(".meta")]
        exit_codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(classify(code) for code in exit_codes.values())
        survivors = sorted(
            name for name, code in exit_codes.items() if classify(code) != "killed"
            and classify(code) != "timeout"
        )
        result[module] = (counts, survivors)
    return result


def main(root: Path = Path("mutants")) -> int:
    results = scores(root)
    if not results:
        print(f"no mutation results under {root}/: run `make mutants`", file=sys.stderr)
        return 1
    print(f"{'module':<24} {'killed':>6} {'total':>6} {'score':>7}   other outcomes")
    all_killed = all_tested = 0
    for module, (counts, _) in results.items():
        killed = counts["killed"] + counts["timeout"]
        tested = sum(counts.values()) - counts["skipped"]
        all_killed += killed
        all_tested += tested
        others = ", ".join(f"{counts[k]} {k}" for k in sorted(counts)
                           if k not in ("killed", "timeout") and counts[k])
        print(f"{module:<24} {killed:>6} {tested:>6} {_percent(killed, tested):>7}   {others}")
    print(f"{'all':<24} {all_killed:>6} {all_tested:>6} {_percent(all_killed, all_tested):>7}")
    for module, (_, survivors) in results.items():
        if survivors:
            print(f"\nnot killed in {module}:")
            for name in survivors:
                print(f"  {name}")
    return 0


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


if __name__ == "__main__":
    sys.exit(main())
