"""Faults as Azure produces them, through the SDKs' own retry and polling: 429 with Retry-After
(honoured), a 500 (retried), and a failed long-running operation (its code surfaces)."""

import time

import pytest
from azure.core.exceptions import HttpResponseError

from conftest import LOCATION, RG


def test_throttling_with_retry_after_is_waited_and_retried(network, admin):
    admin.fault({"kinds": ["429"], "operation": "Subnets.Get", "count": 2, "retryAfter": 1})
    started = time.monotonic()
    subnet = network.subnets.get(RG, "aks-vnet", "aks-subnet")
    assert subnet["name"] == "aks-subnet"
    assert time.monotonic() - started >= 2, "each Retry-After: 1 is waited"
    statuses = admin.requests()["statusCounts"]
    assert statuses["Subnets.Get 429"] == 2 and statuses["Subnets.Get 200"] == 1


def test_server_errors_are_retried(compute, admin):
    admin.fault({"kinds": ["500"], "operation": "VirtualMachineScaleSets.Get", "count": 1})
    assert compute.virtual_machine_scale_sets.get(RG, "gw-vmss")["name"] == "gw-vmss"
    assert admin.requests()["statusCounts"]["VirtualMachineScaleSets.Get 500"] == 1


def test_a_failed_long_running_operation_keeps_its_code(network, admin, name):
    admin.fault({"kinds": ["failLro"], "operation": "PublicIPPrefixes.CreateOrUpdate", "count": 1,
                 "errorCode": "PublicIpPrefixAllocationFailed"})
    with pytest.raises(HttpResponseError) as err:
        network.public_ip_prefixes.begin_create_or_update(
            RG, name, {"location": LOCATION, "properties": {"prefixLength": 31}}).result()
    assert "PublicIpPrefixAllocationFailed" in str(err.value)
    assert network.public_ip_prefixes.get(RG, name)["properties"]["provisioningState"] == "Failed"
    network.public_ip_prefixes.begin_delete(RG, name).result()
