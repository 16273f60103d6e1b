"""Writes the emulator's property schema (schema/arm-schema.json) from the official Azure SDK
for Python's models, which are generated from the REST specification.

The emulator stores and echoes only the properties a resource type has (ARM resource providers
drop unknown ones), and ignores read-only ones in requests; this file tells it which are which.
Run with the project's venv (`make deps`):

    .tools/venv/bin/python crates/testing/egress-azure-emulator/sdk-conformance/gen_schema.py

test_schema.py in this directory fails when the committed file differs from a fresh run, so a
change of the pinned SDK (hack/requirements-dev.txt) cannot leave it stale.
"""

import json
import sys
import typing
from importlib.metadata import version
from pathlib import Path

from azure.mgmt.compute import models as compute
from azure.mgmt.network import models as network

# ARM type -> SDK model of its request/response body.
ROOTS = {
    "Microsoft.Network/loadBalancers": (network, "LoadBalancer"),
    "Microsoft.Network/publicIPAddresses": (network, "PublicIPAddress"),
    "Microsoft.Network/publicIPPrefixes": (network, "PublicIPPrefix"),
    "Microsoft.Network/networkInterfaces": (network, "NetworkInterface"),
    "Microsoft.Network/virtualNetworks": (network, "VirtualNetwork"),
    "Microsoft.Network/virtualNetworks/subnets": (network, "Subnet"),
    # Compute accepts the full profile in PATCH too (azure-rest-api-specs#36582), so the
    # scale set's own model describes both PUT and PATCH bodies.
    "Microsoft.Compute/virtualMachineScaleSets": (compute, "VirtualMachineScaleSet"),
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines": (compute, "VirtualMachineScaleSetVM"),
    "Microsoft.Compute/virtualMachines": (compute, "VirtualMachine"),
}

SCALARS = (str, int, float, bool, bytes)


def model_class(module, tp):
    return isinstance(tp, type) and hasattr(tp, "_is_model") and tp.__module__.startswith(module.__name__)


def describe(module, tp, defs, todo):
    """The compact spec of a field type: '' scalar, 'T' model, '[x]' list, '{x}' map."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return describe(module, inner[0], defs, todo) if len(inner) == 1 else ""
    if origin in (list, typing.List):
        return "[" + describe(module, args[0], defs, todo) + "]"
    if origin in (dict, typing.Dict):
        return "{" + describe(module, args[1], defs, todo) + "}"
    if isinstance(tp, typing.ForwardRef):
        tp = getattr(module, tp.__forward_arg__.split(".")[-1])
    if isinstance(tp, str):
        tp = getattr(module, tp.split(".")[-1])
    if model_class(module, tp):
        if tp.__name__ not in defs:
            defs[tp.__name__] = None
            todo.append(tp)
        return tp.__name__
    return ""


def fields(module, cls, defs, todo):
    cls()  # the model base computes _attr_to_rest_field on first use
    # Annotations say `_models.X`; the package exports models and enums alike.
    namespace = {**vars(module), "_models": module}
    hints = typing.get_type_hints(cls, globalns=namespace)
    out = {}
    for attr, rf in cls._attr_to_rest_field.items():
        spec = describe(module, hints.get(attr, str), defs, todo)
        readonly = list(rf._visibility or []) == ["read"]
        out[rf._rest_name] = ("!" if readonly else "") + spec
    return dict(sorted(out.items()))


def main():
    defs = {}
    roots = {}
    for arm_type, (module, name) in ROOTS.items():
        cls = getattr(module, name)
        todo = [cls]
        defs.setdefault(name, None)
        roots[arm_type] = name
        while todo:
            c = todo.pop()
            defs[c.__name__] = fields(module, c, defs, todo)
    doc = {
        "generatedBy": "crates/testing/egress-azure-emulator/sdk-conformance/gen_schema.py",
        "from": {
            "azure-mgmt-network": version("azure-mgmt-network"),
            "azure-mgmt-compute": version("azure-mgmt-compute"),
        },
        "roots": roots,
        "defs": dict(sorted(defs.items())),
    }
    text = json.dumps(doc, indent=1, sort_keys=False) + "\n"
    out = Path(__file__).resolve().parent.parent / "schema" / "arm-schema.json"
    if len(sys.argv) > 1 and sys.argv[1] == "--print":
        sys.stdout.write(text)
    else:
        out.write_text(text)
        print(f"wrote {out} ({len(defs)} models)")


if __name__ == "__main__":
    main()
