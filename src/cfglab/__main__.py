import sys

from cfglab.cli import main

sys.exit(main())
