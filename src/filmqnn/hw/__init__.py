"""filmqnn.hw stage (see DESIGN.md §1)."""
