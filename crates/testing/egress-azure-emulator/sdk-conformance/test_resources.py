"""Resource groups through azure-mgmt-resource with its default api-version."""

from conftest import LOCATION, RG


def test_resource_group_existence_read_and_list(resources, name):
    assert resources.resource_groups.check_existence(RG) is True
    assert resources.resource_groups.check_existence(name) is False
    assert resources.resource_groups.get(RG)["location"] == LOCATION
    created = resources.resource_groups.create_or_update(name, {"location": LOCATION, "tags": {"k": "v"}})
    assert created["name"] == name
    assert resources.resource_groups.check_existence(name) is True
    assert name in [g["name"] for g in resources.resource_groups.list()]
