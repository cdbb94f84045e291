"""The ``nasbench`` command line: parsing and printing only (main.py builds the parser; one
module per group of subcommands registers its own)."""
