"""The instructor's dashboard at /admin, room tools and reports."""
