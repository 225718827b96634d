"""Registry (中登网) connectors: one interface, two adapters.

- ``Registry``: the Protocol every adapter implements (register, query_by_grantor, amend, cancel,
  status).
- ``RestRegistry`` (``connectors.registry.rest_adapter``): for third-party registry API providers.
- ``ManualRegistry`` (``connectors.registry.manual``): the registry has no public API, so this
  adapter files a packet into a persistent manual queue and answers ``PENDING_MANUAL``; an operator
  files it on the registry's website and completes it with ``cvhub registry confirm PACKET_ID
  REGISTRATION_NO``. Financing must wait until ``status(ref)`` is no longer pending.

Heavy imports stay in the adapter modules; this package only defines the shared types.
"""

from connectors.registry.model import (
    Registration,
    RegistrationRequest,
    Registry,
    RegistryStatus,
    conflicting,
)

__all__ = ["Registration", "RegistrationRequest", "Registry", "RegistryStatus", "conflicting"]
