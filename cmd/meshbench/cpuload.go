package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuTimes are the machine's CPU times, all cores added up, in clock
// ticks: what was busy and the whole.
type cpuTimes struct{ busy, total uint64 }

// readCPUTimes reads the first line of /proc/stat (proc(5)): "cpu" and
// the ticks spent in user, nice, system, idle, iowait, irq, softirq,
// steal, … Idle and iowait are not busy. Linux only; elsewhere an error.
func readCPUTimes() (cpuTimes, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return cpuTimes{}, err
	}
	return parseCPULine(line)
}

func parseCPULine(line string) (cpuTimes, error) {
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: first line %q is not the cpu line", strings.TrimSpace(line))
	}
	var t cpuTimes
	for i, f := range fields[1:] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: %q: %v", f, err)
		}
		// guest and guest_nice (fields 9 and 10) are already in user and
		// nice.
		if i >= 8 {
			break
		}
		t.total += n
		if i != 3 && i != 4 { // idle, iowait
			t.busy += n
		}
	}
	return t, nil
}

// busyShare is the share of the machine's CPU time that was busy over the
// next window, or an error where /proc/stat cannot be read.
func busyShare(ctx context.Context, window time.Duration) (float64, error) {
	a, err := readCPUTimes()
	if err != nil {
		return 0, err
	}
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	b, err := readCPUTimes()
	if err != nil {
		return 0, err
	}
	if b.total <= a.total {
		return 0, errors.New("/proc/stat: no tick passed")
	}
	return float64(b.busy-a.busy) / float64(b.total-a.total), nil
}
