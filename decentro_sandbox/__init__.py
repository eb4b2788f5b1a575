"""The stand-in Decentro: a test double, kept apart from production code.

:mod:`decentro_sandbox.core` holds the emulator (Decentro's answers, statuses and sandbox
values, in memory); :mod:`decentro_sandbox.sandbox` serves it over HTTP (``decentro-sandbox``)
with faults and signed callbacks. Mock mode's gateway
(:class:`decentro_adapters.gateway.mock.MockGateway`) is the only production module that
imports it, so the boundary between the library and its test double shows in every import.
"""
