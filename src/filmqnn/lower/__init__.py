"""filmqnn.lower stage (see DESIGN.md §1)."""
