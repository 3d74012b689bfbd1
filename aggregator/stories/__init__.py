"""Story rules: when two entries are the same story (exact keys, near-duplicate
sketches and their MinHash), pure."""
