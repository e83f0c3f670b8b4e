"""The `hybrid-dialogue` command line: one subcommand per stage and per utility."""
