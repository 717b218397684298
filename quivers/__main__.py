import sys

from quivers.cli import main

sys.exit(main())
