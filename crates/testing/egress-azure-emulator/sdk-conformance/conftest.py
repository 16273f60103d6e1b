"""Fixtures of the SDK conformance suite: the official Azure SDK for Python clients pointed at a
running emulator over https, with the SDKs' defaults (their default api-versions, their
long-running-operation pollers, their retry policy). Only the endpoint, the CA to trust, a static
token and a short polling interval are configured; no SDK behaviour is patched.

The emulator is started by `crates/testing/egress-azure-emulator/tests/sdk_conformance.rs`
(`cargo test`, `make test`), which sets EMULATOR_URL and EMULATOR_CA.
"""

import os
import time
import uuid

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg-egress"
LOCATION = "eastus"


class StaticToken:
    """A TokenCredential answering one fixed bearer token (the emulator checks presence only)."""

    def get_token(self, *scopes, **kwargs):
        return AccessToken("sdk-conformance-token", int(time.time()) + 3600)


@pytest.fixture(scope="session")
def url():
    value = os.environ.get("EMULATOR_URL")
    if not value:
        pytest.fail("EMULATOR_URL is not set: run this suite through `cargo test -p egress-azure-emulator --test sdk_conformance`")
    assert value.startswith("https://"), f"the SDKs send tokens over https only: {value}"
    return value


@pytest.fixture(scope="session")
def ca():
    return os.environ["EMULATOR_CA"]


def _client(cls, url, ca):
    # polling_interval: the emulator completes operations after one poll; the SDK's default
    # 30 s wait between polls would only slow the suite (Retry-After is honoured when sent).
    return cls(StaticToken(), SUB, base_url=url, connection_verify=ca, polling_interval=0.05)


@pytest.fixture(scope="session")
def network(url, ca):
    return _client(NetworkManagementClient, url, ca)


@pytest.fixture(scope="session")
def compute(url, ca):
    return _client(ComputeManagementClient, url, ca)


@pytest.fixture(scope="session")
def resources(url, ca):
    return _client(ResourceManagementClient, url, ca)


class Admin:
    """The emulator's admin endpoints (response forms, faults, request log, inventory)."""

    def __init__(self, url, ca):
        self.url, self.ca = url + "/admin", ca

    def _call(self, method, path, body=None):
        r = requests.request(method, f"{self.url}/{path}", json=body, verify=self.ca, timeout=30)
        r.raise_for_status()
        return r.json() if r.content else None

    def forms(self, settings):
        return self._call("PUT", "responseForms", settings)

    def reset_forms(self):
        self._call("DELETE", "responseForms")

    def fault(self, rule):
        return self._call("POST", "faults", rule)["id"]

    def clear_faults(self):
        self._call("DELETE", "faults")

    def requests(self):
        return self._call("GET", "requests")

    def clear_requests(self):
        self._call("DELETE", "requests")

    def resource_ids(self):
        inv = self._call("GET", "inventory")
        return sorted(r["id"].lower() for r in inv["resources"])


@pytest.fixture
def admin(url, ca):
    a = Admin(url, ca)
    a.clear_requests()
    yield a
    a.reset_forms()
    a.clear_faults()


@pytest.fixture
def name():
    """A fresh resource name, so tests do not depend on each other's leftovers."""
    return "sdk-" + uuid.uuid4().hex[:8]


def subnet_id():
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/aks-vnet/subnets/aks-subnet"
