"""filmqnn.quant stage (see DESIGN.md §1)."""
