#!/usr/bin/env python3
"""Regenerates the vendored schemas in this folder (README.md says from where). Needs python3-yaml.

  vendor.py kubernetes SWAGGER_JSON VERSION   -> kubernetes-definitions.json (the definitions the overlays' kinds use)
  vendor.py crd CRD_YAML VERSION SOURCE OUT   -> OUT: that version's openAPIV3Schema, unchanged but for a $comment

Descriptions are dropped from the Kubernetes definitions (they are 80% of the file); nothing else is changed.
"""
import json
import sys

# The built-in kinds the overlays may render (apiVersion, kind). A rendered kind outside this list and the CRDs fails
# tests/Vpn.EndToEnd/ManifestSchemaTests.cs: add it here and regenerate.
KINDS = [
    ("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"), ("apps/v1", "DaemonSet"), ("batch/v1", "Job"),
    ("policy/v1", "PodDisruptionBudget"), ("networking.k8s.io/v1", "NetworkPolicy"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
]


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def refs(node, found):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                found.add(v.rsplit("/", 1)[-1])
            else:
                refs(v, found)
    elif isinstance(node, list):
        for v in node:
            refs(v, found)


def kubernetes(swagger_path, version):
    definitions = json.load(open(swagger_path))["definitions"]
    wanted = set()
    for name, definition in definitions.items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            api_version = (gvk["group"] + "/" if gvk["group"] else "") + gvk["version"]
            if (api_version, gvk["kind"]) in KINDS:
                wanted.add(name)
    missing = set(KINDS) - {next((((g["group"] + "/" if g["group"] else "") + g["version"], g["kind"])
                                 for g in definitions[n]["x-kubernetes-group-version-kind"]), None) for n in wanted}
    if missing:
        sys.exit(f"not in the spec: {sorted(missing)}")
    todo, done = list(wanted), set()
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        found = set()
        refs(definitions[name], found)
        todo.extend(found - done)
    out = {
        "$comment": f"Kubernetes {version} OpenAPI v2 definitions used by the kinds {', '.join(k for _, k in KINDS)}, "
                    "descriptions removed; regenerate with vendor.py (README.md).",
        "definitions": {name: strip(definitions[name]) for name in sorted(done)},
    }
    with open("kubernetes-definitions.json", "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"kubernetes-definitions.json: {len(done)} definitions")


def crd(crd_path, version, source, out_path):
    import yaml
    document = yaml.safe_load(open(crd_path))
    entry = next(v for v in document["spec"]["versions"] if v["name"] == version)
    schema = {"$comment": source, **entry["schema"]["openAPIV3Schema"]}
    with open(out_path, "w") as f:
        json.dump(schema, f, indent=1)
        f.write("\n")
    print(f"{out_path}: {document['spec']['group']}/{version} {document['spec']['names']['kind']}")


if __name__ == "__main__":
    if sys.argv[1] == "kubernetes":
        kubernetes(sys.argv[2], sys.argv[3])
    else:
        crd(*sys.argv[2:6])
