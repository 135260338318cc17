package childproc

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill the child when the thread that
// started it ends.
func setPdeathsig(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
