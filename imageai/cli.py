"""Command line: `python -m imageai explain IMAGE ...` and `python -m imageai train --dataset ...`."""
from __future__ import annotations

import argparse
import sys

from imageai import cli_explain, cli_train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imageai", description="Explain or train ImageAi's CNN.")
    commands = parser.add_subparsers(dest="command", required=True)
    cli_explain.add_parser(commands)
    cli_train.add_parser(commands)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
