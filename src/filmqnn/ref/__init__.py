"""filmqnn.ref stage (see DESIGN.md §1)."""
