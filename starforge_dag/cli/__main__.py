"""`python -m starforge_dag.cli`: the `starforge` command."""

from starforge_dag.cli import main

main()
