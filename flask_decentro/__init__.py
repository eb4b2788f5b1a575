"""Flask extension for Decentro: KYC, UPI payments and Decentro's callbacks.

::

    from flask import Flask
    from flask_decentro import Decentro

    app = Flask(__name__)
    decentro = Decentro(app)            # mock mode by default (USE_MOCKS=true)
    decentro.service.verify_pan(...)    # inside an app context; or flask_decentro.get_service()
"""

from __future__ import annotations

from decentro_core import __version__

from .config import FLASK_OPTIONS, FlaskOptions
from .extension import Decentro
from .state import DecentroState, get_service, get_state

__all__ = ["FLASK_OPTIONS", "Decentro", "DecentroState", "FlaskOptions", "__version__", "get_service", "get_state"]
