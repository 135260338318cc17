package bench

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// peakRSS returns the process's peak resident set in bytes: VmHWM from
// /proc/self/status where there is one, else getrusage's ru_maxrss.
func peakRSS() (uint64, string) {
	if f, err := os.Open("/proc/self/status"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				fs := strings.Fields(v) // "123456 kB"
				if len(fs) == 2 && fs[1] == "kB" {
					if kb, err := strconv.ParseUint(fs[0], 10, 64); err == nil {
						return kb << 10, "VmHWM"
					}
				}
			}
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, "unknown"
	}
	if runtime.GOOS == "darwin" {
		return uint64(ru.Maxrss), "ru_maxrss" // bytes there
	}
	return uint64(ru.Maxrss) << 10, "ru_maxrss" // kilobytes on Linux and the BSDs
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU returns the busy and total CPU time of the machine, all cores,
// in clock ticks, from /proc/stat; ok is false where there is none.
func machineCPU() (busy, total uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fs := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(fs) < 6 || fs[0] != "cpu" {
		return 0, 0, false
	}
	for i, f := range fs[1:] {
		if i >= 8 { // guest time is already in user time
			break
		}
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, true
}
