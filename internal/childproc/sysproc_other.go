//go:build !linux

package childproc

import "os/exec"

// setPdeathsig does nothing outside Linux, which has no parent-death
// signal: a child outlives a parent killed without cleanup.
func setPdeathsig(*exec.Cmd) {}
