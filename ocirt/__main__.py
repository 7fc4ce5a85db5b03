import sys

from ocirt.cli import main

sys.exit(main())
