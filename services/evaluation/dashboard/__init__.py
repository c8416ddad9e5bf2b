"""The evaluation dashboard: a web page for communication offices (see app.py)."""
