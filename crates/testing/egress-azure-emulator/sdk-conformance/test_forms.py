"""The official SDKs accept every response form the emulator serves: each long-running
operation answers in each form its REST specification documents (set through the admin
endpoint), and the SDK's poller completes it. A form outside the spec would fail here, the way
the old emulator's 202 for a scale-set PATCH failed every SDK."""

import pytest

from conftest import LOCATION, RG, SUB, subnet_id

FORMS = ["async", "location", "both", "accepted", "polled", "done"]


def lb_body(name):
    return {"location": LOCATION, "sku": {"name": "Standard"}, "properties": {
        "frontendIPConfigurations": [{"name": "fe", "properties": {"subnet": {"id": subnet_id()}}}]}}


@pytest.mark.parametrize("form", FORMS)
def test_every_operation_in_form(form, network, compute, admin, name):
    changed = admin.forms({"*": form})
    polls = admin.requests()["counts"]
    assert polls.get("Operations.GetStatus", 0) == 0

    prefix = network.public_ip_prefixes.begin_create_or_update(
        RG, name, {"location": LOCATION, "properties": {"prefixLength": 31}}).result()
    assert prefix["properties"]["provisioningState"] == "Succeeded"
    pip = network.public_ip_addresses.begin_create_or_update(
        RG, name, {"location": LOCATION, "sku": {"name": "Standard"},
                   "properties": {"publicIPPrefix": {"id": prefix["id"]}}}).result()
    assert pip["properties"]["ipAddress"]
    lb = network.load_balancers.begin_create_or_update(RG, name, lb_body(name)).result()
    assert lb["properties"]["frontendIPConfigurations"][0]["properties"]["privateIPAddress"]
    nic = network.network_interfaces.begin_create_or_update(
        RG, name, {"location": LOCATION, "properties": {"ipConfigurations": [
            {"name": "c", "properties": {"subnet": {"id": subnet_id()}, "publicIPAddress": {"id": pip["id"]}}}]}}).result()
    assert nic["properties"]["provisioningState"] == "Succeeded"

    vmss = compute.virtual_machine_scale_sets.get(RG, "gw-vmss")
    tags = {**vmss["tags"], "sdk-form": form}
    updated = compute.virtual_machine_scale_sets.begin_update(RG, "gw-vmss", {"tags": tags}).result()
    assert updated["tags"]["sdk-form"] == form
    vmss_put = compute.virtual_machine_scale_sets.begin_create_or_update(
        RG, "gw-vmss", {"location": LOCATION, "tags": vmss["tags"]}).result()
    assert "sdk-form" not in vmss_put["tags"] or vmss_put["tags"]["sdk-form"] == form
    vm = compute.virtual_machine_scale_set_vms.get(RG, "gw-vmss", "1")
    done = compute.virtual_machine_scale_set_vms.begin_update(
        RG, "gw-vmss", "1", {"location": LOCATION, "properties": {
            "networkProfileConfiguration": vm["properties"]["networkProfileConfiguration"]}}).result()
    assert done["properties"]["provisioningState"] == "Succeeded"
    assert compute.virtual_machine_scale_sets.begin_update_instances(RG, "gw-vmss", {"instanceIds": ["1"]}).result() is None

    network.network_interfaces.begin_delete(RG, name).result()
    network.load_balancers.begin_delete(RG, name).result()
    network.public_ip_addresses.begin_delete(RG, name).result()
    network.public_ip_prefixes.begin_delete(RG, name).result()

    counts = admin.requests()["counts"]
    status, result = counts.get("Operations.GetStatus", 0), counts.get("Operations.GetResult", 0)
    if form == "done":
        assert (status, result) == (0, 0), counts
    elif form == "location":
        assert result > 0, counts
    elif form != "polled":
        assert status > 0, counts
    assert changed["VirtualMachineScaleSets.Update"]["form"] in (form, "async")
