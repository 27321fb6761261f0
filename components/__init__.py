"""Components of the homelab backup stack; see DESIGN.md for the architecture."""
