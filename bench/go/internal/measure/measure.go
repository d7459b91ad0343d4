// Package measure is what the memory workloads (parked, idle) read about
// their own process. Counterpart of bench/src/shared/measure.rs.
package measure

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// VmRSS is the process's resident set size in bytes (VmRSS in
// /proc/self/status).
func VmRSS() uint64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		panic(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line)
			kib, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				panic(err)
			}
			return kib * 1024
		}
	}
	panic("no VmRSS line in /proc/self/status")
}

// IdleHold is how long the idle workloads leave their goroutines parked:
// IDLE_HOLD_MS milliseconds, else defaultMs.
func IdleHold(defaultMs int) time.Duration {
	ms := defaultMs
	if v, ok := os.LookupEnv("IDLE_HOLD_MS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			panic("IDLE_HOLD_MS must be a number of milliseconds")
		}
		ms = n
	}
	return time.Duration(ms) * time.Millisecond
}
