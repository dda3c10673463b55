"""OCPP 1.6J (JSON over WebSocket): the central-system side of the platform.

``gateway`` is the process (``manage.py ocpp_gateway``): piles connect to
``ws://H:P/ocpp/{chargePointId}`` with subprotocol ``ocpp1.6``; the ``chargePointId`` is the
pile code of the platform-wide pile registry. Messages are parsed and schema-checked by the
``ocpp`` library; what is ours is the mapping to charging's port (``mapping``), the
transaction table (``protocols.models.OcppTransaction``, ``transactions``) and the session
handling. ``commands`` are the OCPP-only platform commands carried on the command bus;
``simulator`` is a simulated pile built on the library's ChargePoint.
"""
