package testenv

import "syscall"

// sysProcAttr makes the kernel kill a server when the test binary dies, even
// if the package has no TestMain calling Main.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
