"""HTTP, CLI, settings and wiring; the business rules live in `segmentation` and `offers`."""
