"""Lists page with nextLink (the runner starts the emulator with --page-size 2) and the SDKs'
pagers follow it to the end."""

from conftest import LOCATION, RG


def test_pagers_follow_next_link(network, compute, admin, name):
    for i in range(5):
        network.public_ip_addresses.begin_create_or_update(
            RG, f"{name}-{i}", {"location": LOCATION, "sku": {"name": "Standard"}, "properties": {}}).result()
    mine = [p["name"] for p in network.public_ip_addresses.list(RG) if p["name"].startswith(name)]
    assert sorted(mine) == [f"{name}-{i}" for i in range(5)]
    nics = list(network.network_interfaces.list(RG))
    assert len(nics) >= 5, "the seed's standalone NICs span pages"
    assert admin.requests()["counts"]["PublicIPAddresses.List"] >= 3
    for i in range(5):
        network.public_ip_addresses.begin_delete(RG, f"{name}-{i}").result()
