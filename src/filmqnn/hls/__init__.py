"""filmqnn.hls stage (see DESIGN.md §1)."""
