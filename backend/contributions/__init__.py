"""A contributor's own view of where their work went: each answer, its anchoring, its fate
in quality control, the dataset versions that hold it, the licences sold of those, and what
it earned (reward and royalties)."""
