"""Did a benchmark run complete? Reads ocibench's --json and fails (one
line per problem, exit 1) when a runtime named in NAMES failed a workload
or has no samples for a metric; timings are never judged (`make test`
runs a short benchmark as a regression guard that is not a timing test).

    python3 tools/bench_check.py bench.json ocirt [runc ...]"""
import json
import sys


def problems(doc, names):
    out = []
    for rt in names:
        if rt not in {r["name"] for r in doc["runtimes"]}:
            out.append(f"{rt}: not in the run")
            continue
        for metric in doc["units"]:
            failed = doc["failed"].get(f"{metric} / {rt}")
            if failed:
                out.append(f"{rt}: {metric}: {failed}")
            elif not doc["samples"].get(metric, {}).get(rt):
                out.append(f"{rt}: {metric}: no samples")
    return out


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    with open(argv[0]) as f:
        doc = json.load(f)
    found = problems(doc, argv[1:])
    for p in found:
        print(f"bench_check: {p}", file=sys.stderr)
    if not found:
        print(f"bench_check: {', '.join(argv[1:])}: every workload of {len(doc['units'])} metrics completed")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
