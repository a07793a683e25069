//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// tick is one unit of /proc/PID/stat's CPU times. The kernel counts them
// in USER_HZ, which Linux fixes at 100 a second for every program to
// read, whatever rate its own clock runs at: 10 ms a tick.
const tick = 10 * time.Millisecond

// stat is what this program reads from one /proc/PID/stat line.
type stat struct {
	pid            int
	comm           string
	state          byte
	ppid           int
	utime, stime   int64 // this process's own CPU time, user and kernel, in ticks
	cutime, cstime int64 // its children's, counted when it has waited for them
	threads        int
}

// parseStat reads a /proc/PID/stat line. The second field is the
// program's name in parentheses, and the name may hold spaces and
// parentheses itself, so the fields after it are counted from the last
// ")" of the line, never by splitting the whole line on spaces.
func parseStat(line string) (stat, error) {
	var s stat
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 1 || end < open {
		return s, fmt.Errorf("stat line %q: no (comm)", line)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil {
		return s, fmt.Errorf("stat line %q: pid: %v", line, err)
	}
	s.pid, s.comm = pid, line[open+1:end]
	// f[0] is field 3 of proc(5) (state), so field N is f[N-3].
	f := strings.Fields(line[end+1:])
	if len(f) < 18 {
		return s, fmt.Errorf("stat line %q: %d fields after the name, want at least 18", line, len(f))
	}
	s.state = f[0][0]
	nums := make([]int64, 0, 18)
	for _, v := range f[1:18] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return s, fmt.Errorf("stat line %q: %v", line, err)
		}
		nums = append(nums, n)
	}
	// nums[0] is field 4 (ppid); field N is nums[N-4].
	s.ppid = int(nums[0])
	s.utime, s.stime, s.cutime, s.cstime = nums[10], nums[11], nums[12], nums[13]
	s.threads = int(nums[16])
	return s, nil
}

func readStat(pid int) (stat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	return parseStat(string(bytes.TrimSpace(data)))
}

// rssKiB is VmRSS from /proc/PID/status: the pages of the process in
// memory now, in KiB (shared pages counted in every process that maps
// them).
func rssKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// usage is a process tree's accounting at one moment.
type usage struct {
	ticks   int64 // CPU time of the tree: the live processes' own, and what the root has reaped
	procs   int   // processes in the tree, the root included
	threads int   // threads in all of them
	rss     int64 // KiB, summed over the processes
}

// treePids lists the live descendants of pid, found by their parents'
// PIDs in a walk of /proc: slow with many processes on the machine, so it
// is done once, before a measurement, not at its edges.
func treePids(pid int) []int {
	kids := map[int][]int{}
	if ents, err := os.ReadDir("/proc"); err == nil {
		for _, e := range ents {
			p, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if s, err := readStat(p); err == nil { // a process may end while we look
				kids[s.ppid] = append(kids[s.ppid], p)
			}
		}
	}
	pids := []int{pid}
	for i := 0; i < len(pids); i++ {
		pids = append(pids, kids[pids[i]]...)
	}
	return pids
}

// region tree
// usageOf adds up the processes pids, the first of them the root. A
// child that has ended and been waited for is in the root's cutime and
// cstime; one that has ended since treePids is skipped here, its time
// already in those.
func usageOf(root int, pids []int) usage {
	var u usage
	for _, pid := range pids {
		s, err := readStat(pid)
		if err != nil {
			continue
		}
		if pid == root {
			u.ticks += s.cutime + s.cstime
		}
		u.ticks += s.utime + s.stime
		u.procs++
		u.threads += s.threads
		if r, err := rssKiB(pid); err == nil {
			u.rss += r
		}
	}
	return u
}

// endregion tree

// selfTicks is this program's own CPU time so far: the load generator's.
func selfTicks() int64 {
	s, err := readStat(os.Getpid())
	if err != nil {
		return 0
	}
	return s.utime + s.stime
}

// machine is the line printed above the table: the CPU's model, how many
// CPUs, the kernel and the Go that built this program.
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
	line := fmt.Sprintf("machine: %s, %d CPUs, %s, %s", model, runtime.NumCPU(), kernel, runtime.Version())
	if !pinned() {
		line += "; not pinned: the servers and the load share the CPUs"
	}
	return line
}
