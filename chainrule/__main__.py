"""``python -m chainrule ...``: the same as the ``chainrule`` script."""
import sys

from .cli import main

sys.exit(main())
