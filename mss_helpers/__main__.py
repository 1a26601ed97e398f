import sys

from mss_helpers.cli import main

sys.exit(main())
