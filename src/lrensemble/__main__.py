"""`python -m lrensemble` is the `lrens` command."""

from lrensemble.cli.main import main

main()
