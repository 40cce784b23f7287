"""`python -m engine.cli`: the headless CLI (the detached engine is started this way too)."""

import sys

from engine.cli.app import main

sys.exit(main())
