// Package rules owns the automation language: the YAML file format and
// the compilation of If conditions and flow `who` expressions into cached,
// type-checked CEL programs over the record model of package crm.
//
// Loading is parse, then compile, then analyse, each in its own file,
// with YAML positions kept so that every error of every file is reported
// together as FILE:LINE:COL: automation ID: message:
//
//   - parse.go reads one file into automations and settles everything the
//     format alone decides (keys, values, the support matrix, fire modes);
//   - compile.go compiles a set of files given as names and bytes (files.go
//     reads them, for the callers that start from paths) on every core:
//     unique ids, conditions and whos through env.go's environments, and
//     the fire rule that needs the compiled condition;
//   - env.go builds the CEL environments per trigger shape and compiles
//     expressions, sharing identical ones; shape.go shares the parse and
//     check of expressions that differ only in their literals; numeric.go
//     lets int literals compare with double fields; picklist.go rejects
//     a field with listed values compared with a constant outside them;
//   - analyze.go extracts what the engine's index needs from each compiled
//     condition; clauses.go compiles a condition's top-level clauses for
//     the authoring tools;
//   - internal/celfast is the specialised evaluator of the common CEL
//     subset, with cel-go as its fallback; its differential tests against
//     cel-go (celfast_*_test.go) live here, where expressions compile.
package rules
