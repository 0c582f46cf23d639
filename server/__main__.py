"""``python -m server`` is the ``weft`` command."""

from server.cli import main

raise SystemExit(main())
