package bench

import "syscall"

// sysProcAttr makes the kernel kill a child (redis-server, a scenario
// process) when the suite dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
