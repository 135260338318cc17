//go:build !linux

package testenv

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: a package without a
// TestMain calling Main leaves the shared server running.
func sysProcAttr() *syscall.SysProcAttr { return nil }
