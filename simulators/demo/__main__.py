import sys

from simulators.demo.cli import main

sys.exit(main())
