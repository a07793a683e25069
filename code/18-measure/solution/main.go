//go:build linux

//go:debug containermaxprocs=0

// Command 18-measure is the book's load generator and harness. It builds
// the servers of Parts I and III, starts each on 127.0.0.1:0 pinned to CPU
// 0 (taskset), pins itself to CPU 1, drives the same loads against each,
// and reads what the kernel counted for the server in /proc/PID/stat and
// /proc/PID/status: CPU time per request, threads, processes, memory. It
// prints the machine and one table.
//
//	go run ./code/18-measure                          # every design, every load: about 90 s
//	go run ./code/18-measure -designs poll,epoll      # some designs
//	go run ./code/18-measure -loads 1,100,idle        # some loads
//	go run ./code/18-measure -quick                   # a short run, for the tests
//	go run ./code/18-measure -q -record testdata/bench.txt
//
// The designs are in design.go, the load generator in load.go, the /proc
// reading in proc.go, the table in table.go, the narrator in narrate.go.
//
// It needs Linux: it reads /proc and uses sched_setaffinity.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type config struct {
	designs []string      // which designs, by name
	loads   []string      // client counts for request/response, and "idle"
	window  time.Duration // how long each request/response cell is measured
	idle    int           // how many idle connections, where the design can hold them
	quiet   bool          // do not narrate system calls
	record  string        // also write the run as a transcript to this file
}

func main() {
	var cfg config
	var quick bool
	designs := flag.String("designs", strings.Join(names(), ","), "comma-separated `designs` to measure")
	loads := flag.String("loads", "1,10,100,1000,idle", "comma-separated `loads`: numbers of clients in request/response, and idle")
	flag.DurationVar(&cfg.window, "time", 750*time.Millisecond, "how long each request/response cell is measured, after its warm-up")
	flag.IntVar(&cfg.idle, "idle", 10000, "how many idle connections, where a design can hold them")
	flag.BoolVar(&quick, "quick", false, "a short run: 1 and 10 clients for 200ms, 20 idle connections")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	flag.StringVar(&cfg.record, "record", "", "also write the run, as a transcript the chapter shows, to `file`")
	flag.Parse()
	cfg.designs, cfg.loads = strings.Split(*designs, ","), strings.Split(*loads, ",")
	if quick {
		cfg.loads, cfg.window, cfg.idle = []string{"1", "10", "idle"}, 200*time.Millisecond, 20
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run prepares the machine, builds the designs, and measures every cell.
func run(ctx context.Context, cfg config, w io.Writer) (err error) {
	if cfg.record != "" {
		f, err := record(cfg.record)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, f.Close()) }()
		w = io.MultiWriter(w, f)
	}
	n := newNarrator(w, cfg.quiet)
	if err := prepare(n); err != nil {
		return err
	}
	ds, err := selectDesigns(cfg.designs)
	if err != nil {
		return err
	}
	exes, bin, err := build(ctx, ds)
	defer os.RemoveAll(bin)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, machine())
	for _, d := range ds { // each design answers a narrated probe first
		if err := probeDesign(n, exes[d.dir], d); err != nil {
			return err
		}
	}
	var wrong int
	fmt.Fprintf(w, "\nrequest/response: each client writes a line and reads its echo, again; %v measured after a warm-up\n%s", cfg.window, rrHeader)
	for _, load := range cfg.loads {
		perRequest := strings.HasPrefix(load, "c") // c10: a connection per request
		clients, err := strconv.Atoi(strings.TrimPrefix(load, "c"))
		if load == "idle" || ctx.Err() != nil {
			continue
		} else if err != nil || clients < 1 {
			return fmt.Errorf("-loads: %q is not a number of clients, cN, nor idle", load)
		}
		for _, d := range ds {
			r, err := measure(exes[d.dir], d, clients, perRequest, cfg.window)
			if err != nil {
				return err
			}
			wrong += r.errors
			printRR(w, r)
		}
	}
	if slices.Contains(cfg.loads, "idle") && ctx.Err() == nil {
		fmt.Fprintf(w, "\nidle: connections that said one line each, then nothing; the server's memory and threads with them\n%s", idleHeader)
		for _, d := range ds {
			r, err := holdIdle(exes[d.dir], d, cfg.idle)
			if err != nil {
				return err
			}
			wrong += r.errors
			printIdle(w, r)
		}
	}
	if wrong > 0 {
		return fmt.Errorf("%d wrong echoes: a server answered a line with another", wrong)
	}
	return ctx.Err()
}

// region prepare
// prepare raises this program's limit on descriptors to the most it may
// have (the servers it starts inherit it), and pins every thread of it to
// CPU 1, so that the load and the server never take each other's CPU.
// A new thread starts with its creator's affinity: pinning the threads
// there are now pins those the runtime starts later.
func prepare(n narrator) error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	lim.Cur = lim.Max
	err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	n.call(fmt.Sprintf("setrlimit(RLIMIT_NOFILE, {cur: %d, max: %d})", lim.Cur, lim.Max), "0", err)
	if err != nil {
		return fmt.Errorf("setrlimit RLIMIT_NOFILE: %w", err)
	}
	if !pinned() {
		return nil // the load and the servers share the CPUs, and the machine line says so
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	var cpu1 unix.CPUSet
	cpu1.Set(1)
	for _, t := range tasks {
		tid, _ := strconv.Atoi(t.Name())
		err := unix.SchedSetaffinity(tid, &cpu1)
		n.call(fmt.Sprintf("sched_setaffinity(%d, [1])", tid), "0", err)
		if err != nil {
			return fmt.Errorf("sched_setaffinity %d: %w", tid, err)
		}
	}
	return nil
}

// endregion prepare

// region measure
// measure starts a design, connects clients, lets every client it serves
// have an echo (the warm-up: processes and threads started, buffers
// allocated), and then measures a window: the server's CPU time from
// /proc/PID/stat before and after, the requests answered in between, and
// their latencies.
func measure(exe string, d design, count int, perRequest bool, window time.Duration) (rrRow, error) {
	r := rrRow{design: d.name, load: fmt.Sprint(count), clients: count}
	if perRequest {
		r.load = "c" + r.load
	}
	srv, err := startServer(exe, d, pinned())
	if err != nil {
		return r, err
	}
	defer srv.stop()
	c := clients{perRequest: perRequest}
	defer c.close()
	if err := c.dial(srv.addr, count); err != nil {
		return r, fmt.Errorf("%s, %d clients: %w", d.name, count, err)
	}
	c.start(false)
	c.settle(d.serving(count), 10*time.Second)
	pids := treePids(srv.pid())
	before, self := usageOf(srv.pid(), pids), selfTicks()
	start := time.Now()
	c.phase.Store(measuring)
	time.Sleep(window)
	c.phase.Store(stopping)
	after := usageOf(srv.pid(), pids)
	r.elapsed, r.loadTicks = time.Since(start), selfTicks()-self
	c.stop()
	r.ticks = after.ticks - before.ticks
	r.threads, r.procs = after.threads, after.procs
	lat := c.sortedLatencies()
	r.requests, r.served, r.errors = len(lat), c.served, len(c.errors)
	r.p50, r.p99, r.p999 = percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 0.999)
	r.conns = int(c.opened.Load())
	return r, nil
}

// endregion measure

// region idle
// holdIdle starts a design, opens n connections, has each say one line
// (so the server has accepted it, and made it a process, a thread or an
// entry in its loop), and reads the server's memory and threads.
func holdIdle(exe string, d design, n int) (idleRow, error) {
	if d.idle > 0 && d.idle < n {
		n = d.idle
	}
	r := idleRow{design: d.name, conns: n, why: d.why}
	srv, err := startServer(exe, d, pinned())
	if err != nil {
		return r, err
	}
	defer srv.stop()
	base := usageOf(srv.pid(), []int{srv.pid()})
	var c clients
	defer c.close()
	if err := c.dial(srv.addr, n); err != nil {
		return r, fmt.Errorf("%s, %d idle: %w", d.name, n, err)
	}
	c.start(true)
	c.settle(d.serving(n), 10*time.Second)
	c.stop()
	u := usageOf(srv.pid(), treePids(srv.pid()))
	r.held, r.errors = int(c.answered.Load()), len(c.errors)
	r.rss, r.rss0, r.threads, r.procs = u.rss, base.rss, u.threads, u.procs
	return r, nil
}

// endregion idle
