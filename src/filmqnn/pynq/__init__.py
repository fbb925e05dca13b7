"""filmqnn.pynq stage (see DESIGN.md §1)."""
