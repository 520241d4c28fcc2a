package testrelay

import (
	"os/exec"
	"syscall"
)

// endWithUs has the kernel stop cmd when the process that started it dies.
func endWithUs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
