"""``python -m driftline``: the same as the ``driftline`` command."""

from driftline.cli import main

main()
