"""`python -m imageai explain IMAGE`: classify one image and print each stage's shape, or the JSON report."""
from __future__ import annotations

import argparse
import errno
import os
import sys

from imageai import registry
from imageai.errors import ImageAiError, ImageReadError
from imageai.explain import stage_stats
from imageai.i18n import t
from imageai.images import MAX_FILE_BYTES
from imageai.pipeline import explain_bytes
from imageai.report import report_json
from imageai.trace import Trace

LANG = "en"  # the command line speaks English; the app follows the user's language
DEFAULT_MODEL = "digits"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("explain", help=t(LANG, "cli.explain.help"),
                                   description=t(LANG, "cli.explain.help"))
    parser.add_argument("image", metavar="IMAGE", help=t(LANG, "cli.explain.image"))
    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="digits|shapes|PATH",
                        help=t(LANG, "cli.explain.model"))
    parser.add_argument("--json", action="store_true", help=t(LANG, "cli.explain.json"))
    parser.add_argument("--values", action="store_true", help=t(LANG, "cli.explain.values"))
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Exit status 0, or 2 with one line on stderr (and nothing on stdout) for a bad image or model."""
    try:
        data = _read_file(args.image)
        loaded = registry.resolve(args.model)
        result = explain_bytes(loaded, data).trace
    except OSError as error:  # a missing or unreadable image file (model files raise ModelFileError)
        return _fail(ImageReadError("cli_file_unreadable", path=args.image,
                                    reason=(error.strerror or type(error).__name__).lower()))
    except ImageAiError as error:
        return _fail(error)
    if args.json or args.values:
        print(report_json(result, loaded.name, loaded.classes, values=args.values,
                          indent=None if args.values else 2))
    else:
        print(summary_text(result, loaded.name, loaded.classes))
    return 0


def summary_text(result: Trace, model_name: str, classes: tuple[str, ...]) -> str:
    """The prediction, then one line per stage: name, shape (C x H x W) and min / max / mean."""
    index = result.prediction
    lines = [t(LANG, "cli.explain.model_line", model=model_name),
             t(LANG, "cli.explain.prediction", label=classes[index],
               probability=float(result.probabilities[index])),
             t(LANG, "cli.explain.stages")]
    width = max(len(name) for name in result.stage_names)
    for name in result.stage_names:
        shape = "x".join(str(n) for n in result.shape(name))
        stats = stage_stats(result.values[name])
        lines.append(f"  {name:<{width}}  {shape:<10}  min={stats.min:.4g} max={stats.max:.4g} "
                     f"mean={stats.mean:.4g}")
    return "\n".join(lines)


def _read_file(path: str) -> bytes:
    """At most one byte more than an image may have, so a huge file is refused without reading it all; a named
    pipe or a device is refused before it is opened (reading one could wait forever)."""
    if os.path.exists(path) and not os.path.isfile(path):
        raise IsADirectoryError(errno.EISDIR, "not a regular file")
    with open(path, "rb") as f:
        return f.read(MAX_FILE_BYTES + 1)


def _fail(error: ImageAiError) -> int:
    """Exactly one line on stderr, in the catalog's words, and exit status 2."""
    print(" ".join(error.message(LANG).split()), file=sys.stderr)
    return 2
