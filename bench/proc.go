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

// userHZ is the unit of the CPU times of /proc/PID/stat: USER_HZ, 100 on
// every Linux platform Go supports.
const userHZ = 100

// procCPU returns the CPU time process pid has used, from /proc; ok is
// false where it cannot be read.
func procCPU(pid int) (time.Duration, bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	fs := strings.Fields(string(b[i+1:])) // state is fs[0]; utime and stime are fields 14 and 15 of the line
	if len(fs) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseUint(fs[11], 10, 64)
	stime, err2 := strconv.ParseUint(fs[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * time.Second / userHZ, true
}
