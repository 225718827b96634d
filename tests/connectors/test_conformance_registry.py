"""The REST registry adapter passes the standard conformance suite against the registry sandbox."""

from connectors.registry.conformance import RegistryAdapter, registry_sandbox
from connectors.testing import conformance_suite

TestRegistryConformance = conformance_suite(RegistryAdapter, registry_sandbox, name="Registry")
