import sys

from mtl_tracing.cli import main

sys.exit(main())
