"""What the recording monitor reads and the render's files write.

The monitor's protobuf Struct conversion and secret markers
(``components.render.monitor``), and the JSON and YAML encoding of ``resources.json`` and
``manifests.yaml`` (``components.render.output``).
"""

from __future__ import annotations

import json

import pytest
import yaml

from components.render.output import SIG_KEY


def test_struct_conversion_matches_protobufs_own_with_integers_restored():
    from google.protobuf import json_format, struct_pb2

    from components.render.mocks import _struct_to_py
    from components.render.output import normalize_numbers

    value = {
        "name": "vbsiv", "replicas": 3, "weight": 2.5, "enabled": True, "off": False, "none": None,
        "ports": [{"port": 8080, "name": "http"}, [], {}], "nested": {"deep": {"list": [1, 1.5, "x", None]}},
        "empty": "", "big": 2**40,
    }
    message = struct_pb2.Struct()
    message.update(value)
    assert _struct_to_py(message) == normalize_numbers(json_format.MessageToDict(message)) == value
    assert isinstance(_struct_to_py(message)["replicas"], int)


def test_has_markers_finds_every_marker_the_monitor_rewrites_at_any_depth():
    from components.render.output import ASSET_SIG, RESOURCE_SIG, UNKNOWN, has_markers, secret

    plain = {"a": [1, {"b": "c"}, None], "d": {"e": True}}
    assert not has_markers(plain)
    for marker in (secret("s"), {SIG_KEY: RESOURCE_SIG, "urn": "u"}, {SIG_KEY: ASSET_SIG, "path": "p"}, UNKNOWN):
        assert has_markers({"a": [1, {"b": marker}]})
        assert has_markers([marker])


TRICKY = {
    "text": "\x00\x1b\x7f\u2028é😀\"\\/\t\n\r\b\f",
    "floats": [0.1, 2.5, 100.0, -0.0, 1e16, 1.5e300, 0.0001],
    "ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1],
    "empty": {"map": {}, "list": []},
    "null": None, "flags": [True, False],
    "keys": {"b": 1, "a": 2, "B": 3, "_": 4, "é": 5},
}


@pytest.mark.parametrize(
    "extra",
    [{}, {"small": 1e-05}, {"nan": float("nan")}, {"inf": float("-inf")}, {"huge": 2**64}, {"low": -(2**63) - 1}],
    ids=["fast", "small-float", "nan", "infinity", "beyond-u64", "below-i64"],
)
def test_resources_json_is_exactly_what_the_standard_encoder_writes(extra):
    from components.render.output import dump_resources

    resources = [TRICKY | extra, {"type": "t", "name": "n"}]
    expected = json.dumps(resources, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert dump_resources(iter(resources)) == expected


def test_orjson_is_used_only_where_it_writes_what_json_writes():
    from components.render.output import _orjson_writes_as_json

    assert _orjson_writes_as_json([TRICKY])
    for value in (1e-05, -3e-07, float("nan"), float("inf"), 2**64, -(2**63) - 1):
        assert not _orjson_writes_as_json({"a": [{"b": value}]})


def test_manifests_spell_out_shared_values_and_quote_what_would_change_type():
    from components.render.output import dump_manifests

    labels = {"app": "x", "tier": "true"}
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": labels},
                "spec": {"selector": labels},
                "data": {k: k for k in ("true", "8080", "1.5", "null", "~", "yes", "0o17", "2026-11-26", "x")}}
    text = dump_manifests([manifest])
    assert "&" not in text and "*" not in text  # no anchors or aliases for the shared labels
    # What the dumper wrote before it memoised and dropped aliases: libyaml's, with the
    # block-string representer, on the same values with no object twice.
    from components.render import output

    class Before(output._SafeDumper):
        pass

    Before.add_representer(str, output._represent_str)
    unshared = json.loads(json.dumps(manifest))
    reference = yaml.dump_all([unshared], Dumper=Before, sort_keys=True,
                              default_flow_style=False, explicit_start=True, allow_unicode=True, width=120)
    assert text == reference == dump_manifests([manifest])  # and again with the resolver's memo warm
    assert yaml.safe_load(text) == manifest


def test_manifests_quote_the_one_letter_booleans_of_yaml_1_1():
    # PyYAML writes `y` and `n` plain; go-yaml v2 (kubectl) would read them as booleans.
    from components.render.output import dump_manifests

    letters = ("y", "Y", "n", "N")
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n"},
                "data": {**{k: k for k in letters}, "word": "ny", "script": "y\nn"}}
    text = dump_manifests([manifest])
    for letter in letters:
        assert f"  '{letter}': '{letter}'\n" in text
    assert "name: 'n'\n" in text and "  word: ny\n" in text and "    y\n    n\n" in text
    assert yaml.safe_load(text) == manifest
