"""Framework-free core of Flask-Decentro."""
