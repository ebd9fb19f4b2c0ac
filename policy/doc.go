// Package policy owns bastion's configuration: the schema of bastion.yaml,
// loading it with errors that name the key path and line, validating it, and
// the access decisions made from it (which roles an identity holds, which
// targets it may reach, who may approve, whether it is an auditor).
//
// The package is pure: it reads no files but the config itself (Load), opens
// no sockets and keeps no global state. A *Config is immutable after Load or
// Parse returns it and safe for concurrent readers.
//
// Load order, in call order:
//
//  1. read the file (Load) and parse one YAML document into a yaml.Node tree,
//     so every key keeps its line number;
//  2. start from Defaults and decode the tree key by key, reporting unknown
//     keys, wrong types, duplicate keys and inline secrets;
//  3. validate the decoded values and cross references (rules naming
//     targets and roles, masking naming roles);
//  4. resolve relative paths against the config file's directory.
//
// Every problem found is returned at once, as ConfigErrors, so an operator
// fixes a file in one pass instead of one error per restart.
//
// Key paths in messages use dots for mappings and zero-based indexes for
// lists: "targets[1].address" is the address of the second target.
//
// Decisions fail closed: an identity with no matching role reaches nothing,
// and a nil *Config allows nothing.
package policy
