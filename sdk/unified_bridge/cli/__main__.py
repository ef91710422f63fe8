"""``python -m unified_bridge.cli``: the ``bridge`` command."""

from unified_bridge.cli import main

main()
