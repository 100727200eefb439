"""Parts of the offline toy corpus (egs/mini): language tables and intent templates."""
