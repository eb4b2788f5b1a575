"""Offline Decentro sandbox server."""
