"""filmqnn.models stage (see DESIGN.md §1)."""
