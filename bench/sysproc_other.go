//go:build !linux

package bench

import "syscall"

// sysProcAttr: elsewhere than Linux a child outlives a suite killed
// without cleanup.
func sysProcAttr() *syscall.SysProcAttr { return nil }
