#!/usr/bin/env python3
"""Compare Tern's protobuf definitions against the real flyteidl 1.16.8 descriptors.

Usage:
    python compare_descriptors.py OURS.bin                 # compare, exit 1 on any difference
    python compare_descriptors.py OURS.bin --mutate-check  # prove the comparator can fail

OURS.bin is a FileDescriptorSet produced from agent-api/proto, e.g.
    protoc -I agent-api/proto --include_imports --descriptor_set_out=OURS.bin <files>

Requires a Python environment with `flyteidl==1.16.8` installed (its *_pb2 modules
register the upstream descriptors in the default descriptor pool).

For every message, nested message, enum, nested enum and service/rpc that OUR set
defines in a `flyteidl.*` package, the same full name is looked up in flyteidl's
descriptor pool and compared: field names, numbers, types, type names, labels,
proto3-optional flags, oneof membership, map-ness (map entry key/value types),
the `deprecated` flag of fields, enum value names/numbers, rpc input/output types
and streaming flags. Options other than field `deprecated` (for example the
google.api.http annotations on upstream rpcs) are ignored.

A type that we define but flyteidl does not have is a difference. A type flyteidl
has but we do not define is NOT a difference (we only define the subset we need),
except for nested types/fields/enum values/rpcs of a type we do define.
"""

import argparse
import copy
import importlib
import sys

from google.protobuf import descriptor_pb2, descriptor_pool

FLYTEIDL_MODULES = [
    "flyteidl.service.agent_pb2",
    "flyteidl.admin.agent_pb2",
    "flyteidl.core.literals_pb2",
    "flyteidl.core.types_pb2",
    "flyteidl.core.interface_pb2",
    "flyteidl.core.tasks_pb2",
    "flyteidl.core.identifier_pb2",
    "flyteidl.core.execution_pb2",
    "flyteidl.core.security_pb2",
    "flyteidl.core.metrics_pb2",
    "flyteidl.core.workflow_pb2",
    "flyteidl.core.artifact_id_pb2",
]

REQUIRED_SERVICES = [
    "flyteidl.service.SyncAgentService",
    "flyteidl.service.AsyncAgentService",
    "flyteidl.service.AgentMetadataService",
]

FDP = descriptor_pb2.FieldDescriptorProto


def _type_name(t):
    return FDP.Type.Name(t)


def _label_name(l):
    return FDP.Label.Name(l)


def _strip(name):
    return name[1:] if name.startswith(".") else name


class Index:
    """Full name -> (kind, proto, file name, parent message proto or None)."""

    def __init__(self):
        self.messages = {}
        self.enums = {}
        self.services = {}
        self.files = set()

    def add_file(self, fdp):
        if fdp.name in self.files:
            return
        self.files.add(fdp.name)
        prefix = fdp.package + "." if fdp.package else ""
        for m in fdp.message_type:
            self._add_message(prefix + m.name, m, fdp.name)
        for e in fdp.enum_type:
            self.enums[prefix + e.name] = (e, fdp.name)
        for s in fdp.service:
            self.services[prefix + s.name] = (s, fdp.name)

    def _add_message(self, full, m, fname):
        self.messages[full] = (m, fname)
        for n in m.nested_type:
            self._add_message(full + "." + n.name, n, fname)
        for e in m.enum_type:
            self.enums[full + "." + e.name] = (e, fname)


class Upstream:
    """Lazily indexes flyteidl's files from the default descriptor pool."""

    def __init__(self):
        for mod in FLYTEIDL_MODULES:
            importlib.import_module(mod)
        self.pool = descriptor_pool.Default()
        self.index = Index()

    def _load_file(self, file_desc):
        if file_desc.name in self.index.files:
            return
        fdp = descriptor_pb2.FileDescriptorProto()
        fdp.ParseFromString(file_desc.serialized_pb)
        self.index.add_file(fdp)

    def message(self, full):
        try:
            d = self.pool.FindMessageTypeByName(full)
        except KeyError:
            return None
        self._load_file(d.file)
        return self.index.messages.get(full)

    def enum(self, full):
        try:
            d = self.pool.FindEnumTypeByName(full)
        except KeyError:
            return None
        self._load_file(d.file)
        return self.index.enums.get(full)

    def service(self, full):
        try:
            d = self.pool.FindServiceByName(full)
        except KeyError:
            return None
        self._load_file(d.file)
        return self.index.services.get(full)


class Comparator:
    def __init__(self, ours_set, upstream):
        self.ours = Index()
        self.our_files = []
        for f in ours_set.file:
            self.ours.add_file(f)
            if f.package == "flyteidl" or f.package.startswith("flyteidl."):
                self.our_files.append(f)
        self.up = upstream
        self.diffs = []
        self.n_messages = 0
        self.n_enums = 0
        self.n_rpcs = 0

    def diff(self, line):
        self.diffs.append(line)

    # ---- helpers -------------------------------------------------------
    def _map_entry(self, index_lookup, field):
        """Return (key_field, value_field) if `field` is a map field, else None."""
        if field.type != FDP.TYPE_MESSAGE or field.label != FDP.LABEL_REPEATED:
            return None
        entry = index_lookup(_strip(field.type_name))
        if entry is None:
            return None
        m = entry[0]
        if not m.options.map_entry:
            return None
        key = next((f for f in m.field if f.number == 1), None)
        value = next((f for f in m.field if f.number == 2), None)
        return key, value

    def _our_msg(self, full):
        return self.ours.messages.get(full)

    def _up_msg(self, full):
        return self.up.message(full)

    @staticmethod
    def _oneof_of(msg, field):
        if not field.HasField("oneof_index"):
            return None
        return msg.oneof_decl[field.oneof_index].name

    @staticmethod
    def _describe_type(f):
        if f is None:
            return "<none>"
        if f.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM):
            return "%s(%s)" % (_type_name(f.type), _strip(f.type_name))
        return _type_name(f.type)

    # ---- messages ------------------------------------------------------
    def compare_message(self, full, ours, ours_file):
        self.n_messages += 1
        found = self._up_msg(full)
        if found is None:
            self.diff("%s: message defined by us but not in flyteidl" % full)
            return
        theirs, their_file = found
        if ours_file != their_file:
            self.diff("%s: file %s != %s" % (full, ours_file, their_file))
        if theirs.options.map_entry != ours.options.map_entry:
            self.diff("%s: map_entry %s != %s" % (full, ours.options.map_entry, theirs.options.map_entry))

        their_fields = {f.name: f for f in theirs.field}
        our_fields = {f.name: f for f in ours.field}
        for name, of in our_fields.items():
            p = "%s.%s" % (full, name)
            tf = their_fields.get(name)
            if tf is None:
                self.diff("%s: field defined by us (number %d) but not in flyteidl" % (p, of.number))
                continue
            if of.number != tf.number:
                self.diff("%s: number %d != %d" % (p, of.number, tf.number))
            if of.type != tf.type:
                self.diff("%s: type %s != %s" % (p, _type_name(of.type), _type_name(tf.type)))
            if _strip(of.type_name) != _strip(tf.type_name):
                self.diff("%s: type_name %s != %s" % (p, _strip(of.type_name) or "<none>", _strip(tf.type_name) or "<none>"))
            if of.label != tf.label:
                self.diff("%s: label %s != %s" % (p, _label_name(of.label), _label_name(tf.label)))
            if of.proto3_optional != tf.proto3_optional:
                self.diff("%s: proto3_optional %s != %s" % (p, of.proto3_optional, tf.proto3_optional))
            oo, to = self._oneof_of(ours, of), self._oneof_of(theirs, tf)
            if oo != to:
                self.diff("%s: oneof %s != %s" % (p, oo or "<none>", to or "<none>"))
            om = self._map_entry(self._our_msg, of)
            tm = self._map_entry(self._up_msg, tf)
            if (om is None) != (tm is None):
                self.diff("%s: map %s != %s" % (p, om is not None, tm is not None))
            elif om is not None:
                for role, a, b in (("key", om[0], tm[0]), ("value", om[1], tm[1])):
                    da, db = self._describe_type(a), self._describe_type(b)
                    if da != db:
                        self.diff("%s: map %s %s != %s" % (p, role, da, db))
            if of.options.deprecated != tf.options.deprecated:
                self.diff("%s: deprecated %s != %s" % (p, of.options.deprecated, tf.options.deprecated))
        for name, tf in their_fields.items():
            if name not in our_fields:
                self.diff("%s.%s: field (number %d) in flyteidl but missing from ours" % (full, name, tf.number))

        # oneof declarations (non-synthetic) by name
        def real_oneofs(msg):
            names = set()
            for f in msg.field:
                if f.HasField("oneof_index") and not f.proto3_optional:
                    names.add(msg.oneof_decl[f.oneof_index].name)
            return names

        for name in sorted(real_oneofs(ours) ^ real_oneofs(theirs)):
            side = "ours" if name in real_oneofs(ours) else "flyteidl"
            self.diff("%s: oneof %s only in %s" % (full, name, side))

        # nested types present upstream but missing from ours (map entries are covered above)
        our_nested = {n.name for n in ours.nested_type}
        for n in theirs.nested_type:
            if not n.options.map_entry and n.name not in our_nested:
                self.diff("%s.%s: nested message in flyteidl but missing from ours" % (full, n.name))
        our_enums = {e.name for e in ours.enum_type}
        for e in theirs.enum_type:
            if e.name not in our_enums:
                self.diff("%s.%s: nested enum in flyteidl but missing from ours" % (full, e.name))

        for n in ours.nested_type:
            if n.options.map_entry:
                continue  # compared through the map field
            self.compare_message(full + "." + n.name, n, ours_file)
        for e in ours.enum_type:
            self.compare_enum(full + "." + e.name, e, ours_file)

    # ---- enums ---------------------------------------------------------
    def compare_enum(self, full, ours, ours_file):
        self.n_enums += 1
        found = self.up.enum(full)
        if found is None:
            self.diff("%s: enum defined by us but not in flyteidl" % full)
            return
        theirs, their_file = found
        if ours_file != their_file:
            self.diff("%s: file %s != %s" % (full, ours_file, their_file))
        ov = {v.name: v.number for v in ours.value}
        tv = {v.name: v.number for v in theirs.value}
        for name, num in ov.items():
            if name not in tv:
                self.diff("%s.%s: enum value defined by us (%d) but not in flyteidl" % (full, name, num))
            elif num != tv[name]:
                self.diff("%s.%s: number %d != %d" % (full, name, num, tv[name]))
        for name, num in tv.items():
            if name not in ov:
                self.diff("%s.%s: enum value (%d) in flyteidl but missing from ours" % (full, name, num))
        if ours.value and theirs.value and ours.value[0].name != theirs.value[0].name:
            self.diff("%s: first (default) value %s != %s" % (full, ours.value[0].name, theirs.value[0].name))

    # ---- services ------------------------------------------------------
    def compare_service(self, full, ours, ours_file):
        found = self.up.service(full)
        if found is None:
            self.n_rpcs += len(ours.method)
            self.diff("%s: service defined by us but not in flyteidl" % full)
            return
        theirs, their_file = found
        if ours_file != their_file:
            self.diff("%s: file %s != %s" % (full, ours_file, their_file))
        tm = {m.name: m for m in theirs.method}
        om = {m.name: m for m in ours.method}
        for name, m in om.items():
            self.n_rpcs += 1
            p = "%s.%s" % (full, name)
            t = tm.get(name)
            if t is None:
                self.diff("%s: rpc defined by us but not in flyteidl" % p)
                continue
            if _strip(m.input_type) != _strip(t.input_type):
                self.diff("%s: input_type %s != %s" % (p, _strip(m.input_type), _strip(t.input_type)))
            if _strip(m.output_type) != _strip(t.output_type):
                self.diff("%s: output_type %s != %s" % (p, _strip(m.output_type), _strip(t.output_type)))
            if m.client_streaming != t.client_streaming:
                self.diff("%s: client_streaming %s != %s" % (p, m.client_streaming, t.client_streaming))
            if m.server_streaming != t.server_streaming:
                self.diff("%s: server_streaming %s != %s" % (p, m.server_streaming, t.server_streaming))
        for name in tm:
            if name not in om:
                self.diff("%s.%s: rpc in flyteidl but missing from ours" % (full, name))

    # ---- driver --------------------------------------------------------
    def run(self):
        for f in self.our_files:
            prefix = f.package + "."
            for m in f.message_type:
                self.compare_message(prefix + m.name, m, f.name)
            for e in f.enum_type:
                self.compare_enum(prefix + e.name, e, f.name)
            for s in f.service:
                self.compare_service(prefix + s.name, s, f.name)
        for svc in REQUIRED_SERVICES:
            if svc not in self.ours.services:
                self.diff("%s: required service missing from our set" % svc)
        return self.diffs

    def summary(self):
        return "compared %d messages, %d enums, %d rpcs: %d differences" % (
            self.n_messages, self.n_enums, self.n_rpcs, len(self.diffs))


def load_set(path):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as fh:
        fds.ParseFromString(fh.read())
    return fds


def compare(fds, upstream, quiet=False):
    c = Comparator(fds, upstream)
    diffs = c.run()
    if not quiet:
        for d in diffs:
            print(d)
        print(c.summary())
    return c, diffs


def _find_message(fds, full):
    for f in fds.file:
        prefix = f.package + "."
        stack = [(prefix + m.name, m) for m in f.message_type]
        while stack:
            name, m = stack.pop()
            if name == full:
                return m
            stack.extend((name + "." + n.name, n) for n in m.nested_type)
    raise KeyError(full)


def _find_service(fds, full):
    for f in fds.file:
        for s in f.service:
            if f.package + "." + s.name == full:
                return s
    raise KeyError(full)


def _find_enum(fds, full):
    for f in fds.file:
        prefix = f.package + "."
        for e in f.enum_type:
            if prefix + e.name == full:
                return e
        stack = [(prefix + m.name, m) for m in f.message_type]
        while stack:
            name, m = stack.pop()
            for e in m.enum_type:
                if name + "." + e.name == full:
                    return e
            stack.extend((name + "." + n.name, n) for n in m.nested_type)
    raise KeyError(full)


def _mut_literal_hash(fds):
    f = next(f for f in _find_message(fds, "flyteidl.core.Literal").field if f.name == "hash")
    f.number = 99
    return "flyteidl.core.Literal.hash number -> 99"


def _mut_stream_flag(fds):
    m = next(m for m in _find_service(fds, "flyteidl.service.AsyncAgentService").method if m.name == "GetTaskLogs")
    m.server_streaming = False
    return "AsyncAgentService.GetTaskLogs server_streaming -> False"


def _mut_enum_value(fds):
    v = next(v for v in _find_enum(fds, "flyteidl.core.TaskExecution.Phase").value if v.name == "RETRYABLE_FAILED")
    v.number = 9
    return "flyteidl.core.TaskExecution.Phase.RETRYABLE_FAILED -> 9"


def _mut_oneof(fds):
    m = _find_message(fds, "flyteidl.core.BindingData")
    f = next(f for f in m.field if f.name == "union")
    f.oneof_index = 0  # move `union` into the `value` oneof
    return "flyteidl.core.BindingData.union moved into oneof value"


def _mut_drop_service(fds):
    for f in fds.file:
        for i, s in enumerate(f.service):
            if f.package + "." + s.name == "flyteidl.service.SyncAgentService":
                del f.service[i]
                return "SyncAgentService removed"
    raise KeyError("SyncAgentService")


MUTATIONS = [_mut_literal_hash, _mut_stream_flag, _mut_enum_value, _mut_oneof, _mut_drop_service]


def mutate_check(fds, upstream):
    ok = True
    for mut in MUTATIONS:
        mutated = copy.deepcopy(fds)
        what = mut(mutated)
        c, diffs = compare(mutated, upstream, quiet=True)
        if diffs:
            print("mutation caught (%s): %s" % (what, diffs[0]))
        else:
            print("mutation NOT caught (%s)" % what)
            ok = False
    print("mutate-check: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ours", help="FileDescriptorSet (.bin) built from agent-api/proto")
    ap.add_argument("--mutate-check", action="store_true",
                    help="mutate a copy of OURS and assert the comparison reports differences")
    args = ap.parse_args(argv)

    fds = load_set(args.ours)
    upstream = Upstream()
    if args.mutate_check:
        return mutate_check(fds, upstream)
    _, diffs = compare(fds, upstream)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
