"""Network flows the operator performs, driven by azure-mgmt-network with its defaults:
public IP prefixes, public IPs in a prefix, an internal load balancer with frontend, backend
pool, HTTP probe and UDP floating-IP rule, If-Match, standalone NICs with a secondary
ipConfiguration and a public IP, and the errors Azure answers when it refuses."""

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from conftest import LOCATION, RG, SUB, subnet_id


def prefix_body(length=31, sku="Standard", version="IPv4"):
    return {"location": LOCATION, "sku": {"name": sku, "tier": "Regional"},
            "properties": {"prefixLength": length, "publicIPAddressVersion": version}}


def pip_body(prefix_id=None, version="IPv4", **props):
    p = {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": version, **props}
    if prefix_id:
        p["publicIPPrefix"] = {"id": prefix_id}
    return {"location": LOCATION, "sku": {"name": "Standard", "tier": "Regional"}, "properties": p}


def lb_body(lb_id, port=6000, probe=None, rule=None):
    probe = probe or {"protocol": "Http", "port": 8082, "requestPath": "/healthz", "intervalInSeconds": 5}
    rule = rule or {}
    return {
        "location": LOCATION,
        "sku": {"name": "Standard", "tier": "Regional"},
        "properties": {
            "frontendIPConfigurations": [{"name": "gw", "properties": {
                "privateIPAllocationMethod": "Dynamic", "subnet": {"id": subnet_id()}}}],
            "backendAddressPools": [{"name": "gw"}],
            "probes": [{"name": "r1", "properties": probe}],
            "loadBalancingRules": [{"name": "r1", "properties": {
                "protocol": "Udp", "frontendPort": port, "backendPort": port, "enableFloatingIP": True,
                "frontendIPConfiguration": {"id": f"{lb_id}/frontendIPConfigurations/gw"},
                "backendAddressPool": {"id": f"{lb_id}/backendAddressPools/gw"},
                "probe": {"id": f"{lb_id}/probes/r1"}, **rule}}],
        },
    }


def lb_id(name):
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/loadBalancers/{name}"


def code(err):
    return err.value.error.code if err.value.error else None


def test_prefix_and_public_ips_in_it(network, name):
    prefix = network.public_ip_prefixes.begin_create_or_update(RG, name, prefix_body()).result()
    assert prefix["properties"]["provisioningState"] == "Succeeded"
    net = prefix["properties"]["ipPrefix"]
    assert net.endswith("/31")
    ips = []
    for i in range(2):
        pip = network.public_ip_addresses.begin_create_or_update(RG, f"{name}-{i}", pip_body(prefix["id"])).result()
        ips.append(pip["properties"]["ipAddress"])
    assert sorted(ips)[0] == net.split("/")[0]
    got = network.public_ip_prefixes.get(RG, name)
    assert len(got["properties"]["publicIPAddresses"]) == 2
    with pytest.raises(HttpResponseError) as err:
        network.public_ip_prefixes.begin_delete(RG, name).result()
    assert code(err) == "InUsePublicIpPrefixCannotBeDeleted"
    for i in range(2):
        network.public_ip_addresses.begin_delete(RG, f"{name}-{i}").result()
    network.public_ip_prefixes.begin_delete(RG, name).result()
    with pytest.raises(ResourceNotFoundError):
        network.public_ip_prefixes.get(RG, name)
    # Deleting what is gone is done at once (204).
    network.public_ip_prefixes.begin_delete(RG, name).result()


def test_internal_load_balancer_and_if_match(network, name):
    created = network.load_balancers.begin_create_or_update(RG, name, lb_body(lb_id(name))).result()
    fe = created["properties"]["frontendIPConfigurations"][0]
    assert fe["properties"]["privateIPAddress"].startswith("10.0.0.")
    rule = created["properties"]["loadBalancingRules"][0]["properties"]
    assert (rule["protocol"], rule["enableFloatingIP"]) == ("Udp", True)
    pool = created["properties"]["backendAddressPools"][0]
    assert pool["properties"]["loadBalancingRules"][0]["id"].lower().endswith("/loadbalancingrules/r1")

    current = network.load_balancers.get(RG, name)
    with pytest.raises(HttpResponseError) as err:
        network.load_balancers.begin_create_or_update(
            RG, name, lb_body(lb_id(name), port=6001), headers={"If-Match": 'W/"stale"'}).result()
    assert err.value.status_code == 412
    updated = network.load_balancers.begin_create_or_update(
        RG, name, lb_body(lb_id(name), port=6001), headers={"If-Match": current["etag"]}).result()
    assert updated["properties"]["loadBalancingRules"][0]["properties"]["frontendPort"] == 6001
    assert updated["etag"] != current["etag"]
    assert updated["properties"]["frontendIPConfigurations"][0]["properties"]["privateIPAddress"] == \
        fe["properties"]["privateIPAddress"], "a dynamic frontend keeps its address"
    names = [lb["name"] for lb in network.load_balancers.list(RG)]
    assert name in names
    assert name in [lb["name"] for lb in network.load_balancers.list_all()]
    network.load_balancers.begin_delete(RG, name).result()


def test_standalone_nic_with_a_secondary_ipconfig_and_a_public_ip(network, name):
    prefix = network.public_ip_prefixes.begin_create_or_update(RG, name, prefix_body()).result()
    pip = network.public_ip_addresses.begin_create_or_update(RG, name, pip_body(prefix["id"])).result()
    primary = {"name": "ipconfig1", "properties": {"primary": True, "subnet": {"id": subnet_id()}}}
    nic = network.network_interfaces.begin_create_or_update(
        RG, name, {"location": LOCATION, "properties": {"ipConfigurations": [primary]}}).result()
    secondary = {"name": "egressgateway-x", "properties": {
        "primary": False, "subnet": {"id": subnet_id()}, "publicIPAddress": {"id": pip["id"]}}}
    nic["properties"]["ipConfigurations"].append(secondary)
    updated = network.network_interfaces.begin_create_or_update(
        RG, name, nic, headers={"If-Match": nic["etag"]}).result()
    cfgs = {c["name"]: c["properties"] for c in updated["properties"]["ipConfigurations"]}
    assert cfgs["ipconfig1"]["privateIPAddress"] == nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
    assert cfgs["egressgateway-x"]["publicIPAddress"]["id"].lower() == pip["id"].lower()
    assert network.public_ip_addresses.get(RG, name)["properties"]["ipConfiguration"]["id"].lower().endswith("egressgateway-x")
    listed = [n["name"] for n in network.network_interfaces.list(RG)]
    assert name in listed and "aks-vmpool-12345678-nic-0" in listed
    del updated["properties"]["ipConfigurations"][1]
    network.network_interfaces.begin_create_or_update(RG, name, updated).result()
    network.network_interfaces.begin_delete(RG, name).result()
    network.public_ip_addresses.begin_delete(RG, name).result()
    network.public_ip_prefixes.begin_delete(RG, name).result()


def test_subnet_read(network):
    subnet = network.subnets.get(RG, "aks-vnet", "aks-subnet")
    assert subnet["properties"]["addressPrefix"] == "10.0.0.0/24"


@pytest.mark.parametrize("body, expected", [
    (lambda n: prefix_body(sku="Basic"), "InvalidRequestFormat"),
    (lambda n: prefix_body(length=24), "SpecifiedPrefixLengthNotSupported"),
    (lambda n: prefix_body(length=123, version="IPv6"), "SpecifiedPrefixLengthNotSupported"),
    (lambda n: prefix_body(length=124, version="IPv4"), "SpecifiedPrefixLengthNotSupported"),
])
def test_prefix_requests_azure_refuses(network, name, body, expected):
    with pytest.raises(HttpResponseError) as err:
        network.public_ip_prefixes.begin_create_or_update(RG, name, body(name)).result()
    assert code(err) == expected


@pytest.mark.parametrize("body, expected", [
    ({"location": LOCATION, "properties": {}}, "IPv4BasicSkuPublicIpCountLimitReached"),
    (pip_body(idleTimeoutInMinutes=31), "PublicIPAddressInvalidIdleTimeout"),
    (pip_body(publicIPAllocationMethod="Dynamic"), "StandardSkuPublicIPAddressesMustBeStatic"),
])
def test_public_ip_requests_azure_refuses(network, name, body, expected):
    with pytest.raises(HttpResponseError) as err:
        network.public_ip_addresses.begin_create_or_update(RG, name, body).result()
    assert code(err) == expected


@pytest.mark.parametrize("probe, rule, expected", [
    ({"protocol": "Http", "port": 8082}, None, "LoadBalancerProbeRequestPathRequired"),
    (None, {"frontendPort": 0, "backendPort": 0}, "LoadBalancingRuleHaPortsRequireProtocolAll"),
    (None, {"idleTimeoutInMinutes": 101}, "LoadBalancingRuleIdleTimeoutOutOfRange"),
])
def test_load_balancer_requests_azure_refuses(network, name, probe, rule, expected):
    with pytest.raises(HttpResponseError) as err:
        network.load_balancers.begin_create_or_update(RG, name, lb_body(lb_id(name), probe=probe, rule=rule)).result()
    assert code(err) == expected


def test_ipv6_prefix_public_ips_and_what_azure_refuses_about_ipv6(network, name):
    prefix = network.public_ip_prefixes.begin_create_or_update(
        RG, name, prefix_body(length=127, version="IPv6")).result()
    assert prefix["properties"]["publicIPAddressVersion"] == "IPv6"
    assert prefix["properties"]["ipPrefix"].startswith("2001:db8:")
    with pytest.raises(HttpResponseError) as err:
        network.public_ip_addresses.begin_create_or_update(RG, name, pip_body(prefix["id"])).result()
    assert code(err) == "PublicIPAddressVersionDoesNotMatchPublicIPPrefix"
    pip = network.public_ip_addresses.begin_create_or_update(
        RG, name, pip_body(prefix["id"], version="IPv6")).result()
    assert pip["properties"]["ipAddress"] == prefix["properties"]["ipPrefix"].split("/")[0]
    primary = {"name": "ipconfig1", "properties": {"primary": True, "subnet": {"id": subnet_id()}}}
    v6 = {"name": "v6", "properties": {"primary": False, "privateIPAddressVersion": "IPv6",
                                       "subnet": {"id": subnet_id()}}}
    v4_with_v6_ip = {"name": "v4", "properties": {"primary": False, "subnet": {"id": subnet_id()},
                                                  "publicIPAddress": {"id": pip["id"]}}}
    only_v6 = dict(v6, properties=dict(v6["properties"], primary=True))
    for cfgs, expected in [
        ([primary, v6], "SubnetDoesNotHaveIPv6AddressPrefix"),
        ([only_v6], "IPv6IpConfigurationCannotBePrimary"),
        ([primary, v4_with_v6_ip], "IPVersionForPublicIpAndNicIpConfigurationMustMatch"),
    ]:
        with pytest.raises(HttpResponseError) as err:
            network.network_interfaces.begin_create_or_update(
                RG, name, {"location": LOCATION, "properties": {"ipConfigurations": cfgs}}).result()
        assert code(err) == expected
    network.public_ip_addresses.begin_delete(RG, name).result()
    network.public_ip_prefixes.begin_delete(RG, name).result()
