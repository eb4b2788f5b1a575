"""A FastAPI application built on ``decentro_core`` (see ``app.py``)."""
