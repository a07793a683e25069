package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// tick is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100 on
// every Linux architecture Go runs on (the kernel converts to it for
// /proc, whatever its own HZ). At 3 s of a busy core per run, a tick is a
// third of a percent of the figure.
const tick = 10 * time.Millisecond

// procStat is what the harness reads from one /proc/PID/stat line.
type procStat struct {
	ppid         int
	utime, stime int64 // in ticks, this process's threads, live or ended
}

func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name, field 2, is in parentheses and may hold spaces and
	// parentheses itself: the fields after it start after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no ')' in %q", pid, data)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	var s procStat
	s.ppid, _ = strconv.Atoi(f[1])
	s.utime, _ = strconv.ParseInt(f[11], 10, 64)
	s.stime, _ = strconv.ParseInt(f[12], 10, 64)
	return s, nil
}

// tree is pid and every process under it: nginx's master and its worker,
// or one Go program.
func tree(pid int) []int {
	parent := map[int]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if s, err := readStat(p); err == nil {
			parent[p] = s.ppid
		}
	}
	var pids []int
	for p := range parent {
		for q := p; q > 1; q = parent[q] {
			if q == pid {
				pids = append(pids, p)
				break
			}
		}
	}
	return pids
}

// cpuTime is the CPU time, user and system, the processes of pid's tree
// have used so far.
func cpuTime(pid int) time.Duration {
	var ticks int64
	for _, p := range tree(pid) {
		if s, err := readStat(p); err == nil {
			ticks += s.utime + s.stime
		}
	}
	return time.Duration(ticks) * tick
}

// rss is the resident memory of pid's tree, in bytes (VmRSS of each
// process; the kernel's socket buffers are not in it).
func rss(pid int) int64 {
	var total int64
	for _, p := range tree(pid) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(data)) {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				total += kb << 10
			}
		}
	}
	return total
}

// machine names what the figures were measured on.
func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "unknown kernel"
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(data))
	}
	return fmt.Sprintf("%s, %d CPUs, %s, %s", model, runtime.NumCPU(), kernel, runtime.Version())
}
