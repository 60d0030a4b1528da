"""`python -m synthkit.cli ...` is the `synthkit` command."""
import sys

from . import main

sys.exit(main())
