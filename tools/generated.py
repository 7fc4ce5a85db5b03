"""The command line of the generators: write the output, or with --check
say whether the committed one is stale (exit 1)."""
import sys


def write_or_check(argv, output, source, script):
    if argv[1:] == ["--check"]:
        with open(output) as f:
            stale = f.read() != source
        if stale:
            print(f"{output} is stale: run python {script}", file=sys.stderr)
        return int(stale)
    with open(output, "w") as f:
        f.write(source)
    return 0
