"""``python -m openir`` is the same as the ``openir`` command."""

from openir.cli import main

main()
