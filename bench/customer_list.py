"""`customer list --search Q --limit 50` over 100,000 customers vs `python -c "import sqlmodel, typer"`.

Target (issue 2): at most 1.3x the unavoidable import cost. Run: python bench/customer_list.py
"""

from __future__ import annotations

import sys

from common import TOLLGATE, add_customers, fresh_database, interleaved_medians, verdict

COUNT = 100_000


def main() -> int:
    path = fresh_database("customers-100k.db")
    add_customers(path, COUNT)
    timings = interleaved_medians(
        {
            "baseline": [sys.executable, "-c", "import sqlmodel, typer"],
            "list": [*TOLLGATE, "--db", str(path), "customer", "list", "--search", "77", "--limit", "50"],
        }
    )
    print(f"customers: {COUNT:,}")
    print(f"python -c 'import sqlmodel, typer':            {timings['baseline'] * 1000:7.1f} ms (median)")
    print(f"tollgate customer list --search 77 --limit 50: {timings['list'] * 1000:7.1f} ms (median)")
    return 0 if verdict("customer list", timings["list"] / timings["baseline"], 1.3) else 1


if __name__ == "__main__":
    sys.exit(main())
