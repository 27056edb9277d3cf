"""actrack_dashboard: the HTMX activity UI for actrack (views, template tags, admin pages)."""
