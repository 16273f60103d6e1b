"""Compute flows the operator performs, driven by azure-mgmt-compute (and azure-mgmt-network for
the scale-set NIC reads) with their defaults: scale-set discovery, a model update adding a
secondary ipConfiguration with a public IP from a prefix (If-Match), instance updates, instance
views, scale-set NIC and public IP reads, manual upgrade, standalone VMs, and the revert."""

import copy

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError

from conftest import LOCATION, RG, subnet_id

VMSS = "gw-vmss"


def gateway_ipconfig(name, prefix_id):
    return {"name": name, "properties": {
        "primary": False, "privateIPAddressVersion": "IPv4", "subnet": {"id": subnet_id()},
        "publicIPAddressConfiguration": {"name": name, "properties": {"publicIPPrefix": {"id": prefix_id}}}}}


def with_ipconfig(configs, ipconfig):
    out = copy.deepcopy(configs)
    ipcs = out[0]["properties"]["ipConfigurations"]
    ipcs[:] = [c for c in ipcs if c["name"] != ipconfig["name"]] + [ipconfig]
    return out


def without_ipconfig(configs, name):
    out = copy.deepcopy(configs)
    ipcs = out[0]["properties"]["ipConfigurations"]
    ipcs[:] = [c for c in ipcs if c["name"] != name]
    return out


def test_scale_set_discovery(compute):
    everywhere = {v["name"]: v for v in compute.virtual_machine_scale_sets.list_all()}
    assert everywhere[VMSS]["tags"]["aks-managed-poolName"] == "gwpool"
    in_group = [v["name"] for v in compute.virtual_machine_scale_sets.list(RG)]
    assert VMSS in in_group
    vmss = compute.virtual_machine_scale_sets.get(RG, VMSS)
    assert vmss["properties"]["uniqueId"]
    assert vmss["sku"]["capacity"] == 2


def update_instances(compute, configs):
    for vm in compute.virtual_machine_scale_set_vms.list(RG, VMSS):
        body = {"location": LOCATION, "properties": {"networkProfileConfiguration": {
            "networkInterfaceConfigurations": configs}}}
        done = compute.virtual_machine_scale_set_vms.begin_update(
            RG, VMSS, vm["instanceId"], body, etag=vm["etag"], match_condition=MatchConditions.IfNotModified).result()
        assert done["properties"]["provisioningState"] == "Succeeded"


def test_model_and_instances_get_a_gateway_ipconfig_with_a_prefix_ip(compute, network, admin, name):
    before = admin.resource_ids()
    prefix = network.public_ip_prefixes.begin_create_or_update(
        RG, name, {"location": LOCATION, "sku": {"name": "Standard"}, "properties": {"prefixLength": 31}}).result()
    vmss = compute.virtual_machine_scale_sets.get(RG, VMSS)
    model = vmss["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"]
    ipc = f"egressgateway-{name}"
    configs = with_ipconfig(model, gateway_ipconfig(ipc, prefix["id"]))
    patch = {"properties": {"virtualMachineProfile": {"networkProfile": {"networkInterfaceConfigurations": configs}}}}
    updated = compute.virtual_machine_scale_sets.begin_update(
        RG, VMSS, patch, etag=vmss["etag"], match_condition=MatchConditions.IfNotModified).result()
    assert updated["properties"]["provisioningState"] == "Succeeded"
    assert updated["etag"] != vmss["etag"]
    assert any(c["name"] == ipc for c in
               updated["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]["properties"]["ipConfigurations"])
    assert [vm["properties"]["latestModelApplied"] for vm in compute.virtual_machine_scale_set_vms.list(RG, VMSS)] == [False, False]

    update_instances(compute, configs)
    net = prefix["properties"]["ipPrefix"]
    for vm in compute.virtual_machine_scale_set_vms.list(RG, VMSS, expand="instanceView"):
        i = vm["instanceId"]
        assert vm["properties"]["latestModelApplied"] is True
        assert vm["properties"]["instanceView"]["statuses"]
        view = compute.virtual_machine_scale_set_vms.get_instance_view(RG, VMSS, i)
        assert view["computerName"] == vm["properties"]["osProfile"]["computerName"]
        nics = list(network.network_interfaces.list_virtual_machine_scale_set_vm_network_interfaces(RG, VMSS, i))
        assert len(nics) == 1
        cfg = {c["name"]: c for c in nics[0]["properties"]["ipConfigurations"]}[ipc]
        pip_name = cfg["properties"]["publicIPAddress"]["id"].rsplit("/", 1)[1]
        pip = network.public_ip_addresses.get_virtual_machine_scale_set_public_ip_address(
            RG, VMSS, i, nics[0]["name"], ipc, pip_name)
        assert pip["properties"]["ipAddress"].startswith(net.rsplit(".", 1)[0])
        one = network.network_interfaces.get_virtual_machine_scale_set_network_interface(RG, VMSS, i, nics[0]["name"])
        assert one["etag"] == nics[0]["etag"]
    all_nics = list(network.network_interfaces.list_virtual_machine_scale_set_network_interfaces(RG, VMSS))
    assert len(all_nics) == 2
    assert len(network.public_ip_prefixes.get(RG, name)["properties"]["publicIPAddresses"]) == 2

    # Manual upgrade applies the (reverted) model to one instance; the other is updated itself.
    reverted = without_ipconfig(configs, ipc)
    compute.virtual_machine_scale_sets.begin_update(
        RG, VMSS, {"properties": {"virtualMachineProfile": {"networkProfile": {"networkInterfaceConfigurations": reverted}}}}).result()
    compute.virtual_machine_scale_sets.begin_update_instances(RG, VMSS, {"instanceIds": ["0"]}).result()
    update_instances(compute, reverted)
    network.public_ip_prefixes.begin_delete(RG, name).result()
    assert admin.resource_ids() == before


def test_stale_etag_on_a_scale_set_is_refused(compute):
    vmss = compute.virtual_machine_scale_sets.get(RG, VMSS)
    with pytest.raises(HttpResponseError) as err:
        compute.virtual_machine_scale_sets.begin_update(
            RG, VMSS, {"tags": vmss["tags"]}, etag='"999"', match_condition=MatchConditions.IfNotModified).result()
    assert err.value.status_code == 412


def test_standalone_vms_of_a_vm_pool(compute, network):
    vms = {v["name"]: v for v in compute.virtual_machines.list(RG)}
    vm = vms["aks-vmpool-12345678-vm-0"]
    assert vm["tags"]["aks-managed-nic-name"] == "aks-vmpool-12345678-nic-0"
    nic_id = vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"]
    nic = network.network_interfaces.get(RG, nic_id.rsplit("/", 1)[1])
    assert nic["properties"]["virtualMachine"]["id"].lower() == vm["id"].lower()
    assert compute.virtual_machines.instance_view(RG, vm["name"])["statuses"][1]["code"] == "PowerState/running"
    assert vm["name"] in [v["name"] for v in compute.virtual_machines.list_all()]
    expanded = compute.virtual_machines.get(RG, vm["name"], expand="instanceView")
    assert expanded["properties"]["instanceView"]["computerName"]
