package bench

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// TestProcCPU checks the process CPU readings against each other: this
// process's CPU time from /proc and from getrusage, and the machine's.
func TestProcCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	busy0, total0, ok := machineCPU()
	if !ok {
		t.Fatal("no /proc/stat")
	}
	start := time.Now()
	x := 0
	for time.Since(start) < 200*time.Millisecond { // burn CPU
		x++
	}
	own, ok := procCPU(os.Getpid())
	if !ok {
		t.Fatal("no /proc/self/stat")
	}
	if ru := cpuTime(); own < 100*time.Millisecond || own > ru+50*time.Millisecond {
		t.Errorf("procCPU %v, getrusage %v after burning 200ms", own, ru)
	}
	busy1, total1, _ := machineCPU()
	if busy1 <= busy0 || total1 <= total0 || busy1-busy0 > total1-total0 {
		t.Errorf("machine busy %d→%d of %d→%d", busy0, busy1, total0, total1)
	}
	if _, ok := procCPU(0); ok {
		t.Error("procCPU(0) is ok")
	}
	if rss, src := peakRSS(); rss < 1<<20 || src != "VmHWM" {
		t.Errorf("peak RSS %d from %s", rss, src)
	}
}
