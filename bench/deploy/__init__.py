"""Pieces of the deployment fault run (``python -m bench.deployfault``): the app gunicorn serves,
private PostgreSQL and Redis, the load, the phases, the analysis and the report."""
