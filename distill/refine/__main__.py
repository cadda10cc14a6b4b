"""``python -m distill.refine MODEL --corpus FILE -o OUT``: see ``distill.refine.cli``."""

from distill.cli_checks import exit_process
from distill.refine.cli import main

exit_process(main())
