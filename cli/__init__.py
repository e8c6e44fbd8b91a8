"""The ``dora`` command. Each subcommand is one module here exposing ``HELP``, ``configure`` and
``run``; main.py lists them."""
