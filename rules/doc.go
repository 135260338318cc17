// Package rules owns the automation language: the YAML file format, the
// record schema, and the compilation of If conditions and flow `who`
// expressions into cached, type-checked CEL programs.
//
// Loading is parse, then validate, then compile, each in its own file
// (parse.go, load.go, env.go), with YAML positions kept so that every error
// of every file is reported together as FILE:LINE:COL: automation ID:
// message. analyze.go extracts what the engine's index needs from each
// compiled condition.
//
// Records are typed CEL objects (Record) built from the Schema through a
// custom type provider, so that a misspelled field is a load error and an
// absent field reads as its type's zero value.
package rules
