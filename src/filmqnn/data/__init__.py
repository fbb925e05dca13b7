"""filmqnn.data stage (see DESIGN.md §1)."""
