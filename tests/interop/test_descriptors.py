"""Tern's compiled protobuf schema against flyteidl 1.16.8's own descriptors (wire compatibility).

`tern proto-descriptor --out FILE` writes the FileDescriptorSet the binary was built with;
`compare_descriptors.py` compares every flyteidl.* type in it with the real flyteidl package and, with
`--mutate-check`, proves the comparison can fail.
"""

from __future__ import annotations

import sys

import pytest
from google.protobuf import descriptor_pb2

from tern_interop import HERE, explain, run_command

COMPARATOR = HERE / "compare_descriptors.py"


@pytest.fixture(scope="module")
def descriptor_set(tern_bin, tmp_path_factory):
    out = tmp_path_factory.mktemp("descriptors") / "tern.fds.bin"
    result = run_command([tern_bin, "proto-descriptor", "--out", out], timeout=60)
    assert result.returncode == 0, explain(result)
    assert out.is_file() and out.stat().st_size > 0, f"{out} was not written\n{explain(result)}"
    return out


def test_descriptor_set_parses_and_has_the_services(descriptor_set):
    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    services = {f"{f.package}.{s.name}" for f in fds.file for s in f.service}
    for name in ("flyteidl.service.AsyncAgentService", "flyteidl.service.SyncAgentService",
                 "flyteidl.service.AgentMetadataService"):
        assert name in services, sorted(services)


def test_matches_flyteidl(descriptor_set):
    assert COMPARATOR.is_file(), f"{COMPARATOR} is missing"
    result = run_command([sys.executable, COMPARATOR, descriptor_set], timeout=120)
    assert result.returncode == 0, explain(result)


def test_comparator_detects_mutations(descriptor_set):
    assert COMPARATOR.is_file(), f"{COMPARATOR} is missing"
    result = run_command([sys.executable, COMPARATOR, descriptor_set, "--mutate-check"], timeout=300)
    assert result.returncode == 0, explain(result)
