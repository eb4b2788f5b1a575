"""Adapters for the ports of decentro_core (installed as ``decentro_adapters``)."""
