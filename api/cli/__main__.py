"""`python -m api.cli`: the same command as the `makegood` script."""

from api.cli.main import main

main()
