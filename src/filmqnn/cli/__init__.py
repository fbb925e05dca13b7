"""The `filmqnn` command line: one sub-command per stage of the flow."""
