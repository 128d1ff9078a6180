import sys

from mtl_tracing.cli import entry

sys.exit(entry())
