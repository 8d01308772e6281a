package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// pinApart gives nginx a CPU of its own and everything else (this process
// with the client and the emulator's front, docker-registry, authsvc,
// tokenwriter) the other, as on a deployment where nginx does not compete
// with the load generator and ECR is remote. It returns a func that undoes
// it. E2E_THROUGHPUT_PIN=1 in TestThroughputVersusDirect.
func pinApart(t *testing.T) (restore func()) {
	t.Helper()
	if runtime.NumCPU() < 2 {
		t.Skip("pinning needs two CPUs")
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skip("taskset (util-linux) not found")
	}
	master := nginxPID(t)
	all := fmt.Sprintf("0-%d", runtime.NumCPU()-1)
	pin := func(pid int, cpus string) {
		// -a: every thread; nginx workers forked later inherit the master's.
		if out, err := exec.Command(taskset, "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput(); err != nil {
			t.Logf("taskset %d: %v %s", pid, err, out)
		}
	}
	var others []int
	for _, p := range processes() {
		switch {
		case p.pid == master || p.ppid == master:
			pin(p.pid, "1")
		case p.pid == os.Getpid() || p.comm == "docker-registry" || p.comm == "authsvc" || p.comm == "tokenwriter" || p.pid == e.gateway.Process.Pid:
			others = append(others, p.pid)
			pin(p.pid, "0")
		}
	}
	return func() {
		for _, p := range processes() {
			if p.pid == master || p.ppid == master || slices.Contains(others, p.pid) {
				pin(p.pid, all)
			}
		}
	}
}

// nginxCPUSeconds is the CPU time nginx's master and workers have used so
// far, workers that exited included (counted into the master's children).
func nginxCPUSeconds(t *testing.T) float64 {
	t.Helper()
	master := nginxPID(t)
	var ticks int64
	for _, p := range processes() {
		if p.pid != master && p.ppid != master {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.pid), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		// After comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
		n := 12
		if p.pid == master {
			n = 14
		}
		for i := 11; i <= n && i < len(f); i++ {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += v
		}
	}
	return float64(ticks) / 100 // USER_HZ
}
