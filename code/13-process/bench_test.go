//go:build linux

package main

import (
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// What a process per connection costs, measured, never asserted:
//
//	go test -run '^$' -bench . -benchtime 200x ./code/13-process
//
// BenchmarkConnection is one client's whole life: connect, a line and its
// echo, close. The server starts a child for it and waits for it, so the
// time is mostly fork, exec and the start of a Go program. Run it against
// chapter 12's server, which serves the client itself, to see the
// difference (its -addr takes the same form):
//
//	BOOK_PROGRAM=$PWD/code/12-names go test -run '^$' -bench Connection -benchtime 200x ./code/13-process
//
// BenchmarkChildMemory holds N connections open and reports the resident
// memory (VmRSS) of the parent and of one child, the child's share of it
// (Pss), and the child's threads.

func BenchmarkConnection(b *testing.B) {
	s := booktest.New(b)
	srv := s.Start("server", "-q", "-addr", "127.0.0.1:0")
	line := []byte("ping\n")
	echo := make([]byte, len(line))
	b.ResetTimer()
	for range b.N {
		c, err := net.DialTimeout("tcp", srv.Addr(), 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(line); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, echo); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.StopTimer()
	srv.Interrupt()
}

func BenchmarkChildMemory(b *testing.B) {
	const conns = 20
	s := booktest.New(b)
	srv := s.Start("server", "-q", "-addr", "127.0.0.1:0")
	for range conns {
		c, err := net.DialTimeout("tcp", srv.Addr(), 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		// An echo means that this connection's child is up and serving.
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("up\n"))
		if _, err := io.ReadFull(c, make([]byte, 3)); err != nil {
			b.Fatal(err)
		}
	}
	for range b.N {
		kids := childrenOf(b, srv.Pid())
		if len(kids) < conns {
			b.Fatalf("%d children for %d connections", len(kids), conns)
		}
		child, _ := strconv.Atoi(kids[0])
		b.ReportMetric(float64(status(b, srv.Pid(), "VmRSS")), "parent-kB")
		b.ReportMetric(float64(status(b, child, "VmRSS")), "child-kB")
		// Pss shares each page among the processes that map it: the
		// program's code is in memory once, for every child.
		b.ReportMetric(float64(status(b, child, "Pss", "smaps_rollup")), "child-Pss-kB")
		b.ReportMetric(float64(status(b, child, "Threads")), "child-threads")
	}
	srv.Interrupt()
}

// childrenOf lists the children of pid. Each of its threads has a list of
// its own: the children that thread started.
func childrenOf(tb testing.TB, pid int) []string {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		tb.Fatal(err)
	}
	var kids []string
	for _, t := range tasks {
		kids = append(kids, strings.Fields(readProc(tb, pid, "task/"+t.Name()+"/children"))...)
	}
	return kids
}

// readProc reads /proc/PID/NAME.
func readProc(tb testing.TB, pid int, name string) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// status is the number of a line of /proc/PID/status ("VmRSS:  5120 kB"),
// or of another file of lines like it.
func status(tb testing.TB, pid int, key string, file ...string) int {
	name := "status"
	if len(file) > 0 {
		name = file[0]
	}
	for _, l := range strings.Split(readProc(tb, pid, name), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == key+":" {
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	tb.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}
