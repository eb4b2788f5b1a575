"""Flask extension for Decentro."""
