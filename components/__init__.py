"""Components of the homelab backup stack: config -> plan -> components (README, "What it builds";
docs/DESIGN-NOTES.md for the decisions)."""
