package slapd

import "syscall"

// sysProcAttr kills slapd if the process that started it dies first, so a crashed
// test run leaves no server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
