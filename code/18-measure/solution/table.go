//go:build linux

package main

import (
	"fmt"
	"io"
	"time"
)

// rrRow is one cell of request/response: a design under n clients, each a
// loop of one line written and its echo read on a connection of its own.
type rrRow struct {
	design    string
	load      string // the clients: "10", or "c10" for a connection per request
	clients   int    // clients at once
	conns     int    // connections the load opened in the window
	served    int    // clients that had a request answered in the window
	requests  int    // answered in the window
	elapsed   time.Duration
	ticks     int64 // the server's CPU time in the window, in ticks
	loadTicks int64 // the load generator's own
	p50, p99  time.Duration
	p999      time.Duration
	threads   int // at the end of the window, over the server's processes
	procs     int
	errors    int // wrong echoes
}

// idleRow is a design holding n connections that said one line each and
// then nothing.
type idleRow struct {
	design    string
	conns     int // connections the load opened
	held      int // of them, those the server has answered: it holds them
	rss, rss0 int64
	threads   int
	procs     int
	why       string // why conns is not -idle
	errors    int
}

const rrHeader = "design      clients  served  requests   conns     req/s  CPU µs/req  p50 µs   p99 µs  p99.9 µs  threads  procs  load CPU\n"

func printRR(w io.Writer, r rrRow) {
	cpu, rate, load := "-", "-", "-"
	if r.requests > 0 {
		// A tick is 10 ms: CPU per request is only as good as the
		// number of ticks in the window (hundreds, in a full run).
		cpu = fmt.Sprintf("%.1f", float64(time.Duration(r.ticks)*tick)/float64(r.requests)/1e3)
		rate = fmt.Sprintf("%.0f", float64(r.requests)/r.elapsed.Seconds())
	}
	if r.elapsed > 0 {
		load = fmt.Sprintf("%.0f%%", 100*float64(time.Duration(r.loadTicks)*tick)/float64(r.elapsed))
	}
	fmt.Fprintf(w, "%-10s %8s %7d %9d %7d %9s %11s %7s %8s %9s %8d %6d %9s", r.design, r.load, r.served,
		r.requests, r.conns, rate, cpu, micros(r.p50), micros(r.p99), micros(r.p999), r.threads, r.procs, load)
	if r.errors > 0 {
		fmt.Fprintf(w, "  %d WRONG ECHOES", r.errors)
	}
	fmt.Fprintln(w)
}

const idleHeader = "design       idle   held  RSS MiB  KiB/conn  threads  procs  note\n"

func printIdle(w io.Writer, r idleRow) {
	perConn := "-"
	if r.held > 0 {
		perConn = fmt.Sprintf("%.1f", float64(r.rss-r.rss0)/float64(r.held))
	}
	note := r.why
	if note == "" && r.held < r.conns {
		note = fmt.Sprintf("%d answered within the warm-up's 10 s", r.held)
	}
	if r.errors > 0 {
		note = fmt.Sprintf("%d WRONG ECHOES", r.errors)
	}
	fmt.Fprintf(w, "%-10s %6d %6d %8.1f %9s %8d %6d  %s\n", r.design, r.conns, r.held,
		float64(r.rss)/1024, perConn, r.threads, r.procs, note)
}

// micros shows a latency in microseconds, "-" when nothing was answered.
func micros(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(d)/1e3)
}
