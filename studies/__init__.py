"""Studies: the course's open problems answered with many networks (``python -m studies.<name>``)."""
