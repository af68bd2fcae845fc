"""`python -m imageai`: the command line."""
import sys

from imageai.cli import main

sys.exit(main())
