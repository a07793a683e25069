// Command benchhttp is make bench-http: the book's capstone server, nginx
// and net/http's FileServer, measured side by side in one run on the same
// machine and the same files (the index page of this book's site, a 1 KiB
// and a 1 MiB file), each server pinned to one CPU and wrk, the load, to another.
//
// For each server, file and number of keep-alive connections it prints
// requests per second, the median and 99th percentile latency, the
// server's CPU time per request (from /proc/PID/stat: the figure that
// stays meaningful on a machine doing other work) and its ratio to
// nginx's; then the memory each server holds per idle connection, with
// 10,000 open. Nothing here is a test: it is a measurement to read.
//
//	go run ./tools/benchhttp               # everything (about 2 minutes)
//	go run ./tools/benchhttp -d 1s -conns 1,100 -servers nginx,net/http
//
// It needs nginx and wrk (Debian's packages; make bench-http installs
// them) and taskset (util-linux).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	site     string
	capstone string
	servers  []string
	files    []string
	conns    []int
	idle     int
	d        time.Duration
}

func main() {
	var cfg config
	var servers, files, conns string
	flag.StringVar(&cfg.site, "site", "site", "the book's built site, served by every server")
	flag.StringVar(&cfg.capstone, "capstone", "", "the capstone's program `directory` (default: the last code/NN-* with a -root flag)")
	flag.StringVar(&servers, "servers", "capstone,nginx,net/http", "the servers to measure, in this order")
	flag.StringVar(&files, "files", "/,/1k.bin,/1m.bin", "the paths to fetch (/ is the site's index.html)")
	flag.StringVar(&conns, "conns", "1,100,1000", "numbers of keep-alive connections")
	flag.IntVar(&cfg.idle, "idle", 10000, "idle connections for the memory figure (0: skip)")
	flag.DurationVar(&cfg.d, "d", 3*time.Second, "how long each load runs")
	flag.Parse()
	cfg.servers = strings.Split(servers, ",")
	cfg.files = strings.Split(files, ",")
	for _, c := range strings.Split(conns, ",") {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "benchhttp: -conns: %q is not a number of connections\n", c)
			os.Exit(2)
		}
		cfg.conns = append(cfg.conns, n)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "benchhttp:", err)
		os.Exit(1)
	}
}

// A row is one server under one load.
type row struct {
	server, file string
	conns        int
	load
	cpu time.Duration // the server's CPU time per request
}

func run(cfg config) error {
	for _, tool := range []string{"wrk", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install wrk util-linux, or make bench-http)", tool)
		}
	}
	// 10,000 idle connections need as many descriptors here and in the
	// servers, which inherit the limit.
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	work, err := os.MkdirTemp("", "benchhttp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	files := filepath.Join(work, "files")
	if err := prepareFiles(cfg.site, files); err != nil {
		return err
	}
	// The server gets CPU 0, wrk the last: with two CPUs neither disturbs
	// the other's measurement. With one, both share it, and the table says so.
	serverCPU, loadCPU := 0, runtime.NumCPU()-1
	if loadCPU == 0 {
		serverCPU, loadCPU = -1, -1
	}
	fmt.Printf("machine: %s\n", machine())
	fmt.Printf("load: wrk, 1 thread, keep-alive, %s per run; servers on CPU %d, wrk on CPU %d (-1: not pinned)\n\n",
		cfg.d, serverCPU, loadCPU)

	if cfg.capstone == "" {
		cfg.capstone = findCapstone()
	}
	if cfg.capstone == "" && slices.Contains(cfg.servers, "capstone") {
		// Until the book has its capstone (chapter 20), the anchors alone.
		fmt.Println("no capstone yet (no code/NN-* program takes -root): nginx and net/http only")
		cfg.servers = slices.DeleteFunc(cfg.servers, func(s string) bool { return s == "capstone" })
	}
	var rows []row
	memory := map[string]float64{}
	for _, name := range cfg.servers {
		srv, err := start(cfg, name, work, files, serverCPU)
		if err != nil {
			return err
		}
		r, mem, err := measure(cfg, srv, loadCPU)
		srv.stop()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rows = append(rows, r...)
		memory[name] = mem
	}
	printTable(os.Stdout, cfg, rows, memory)
	return nil
}

// start builds (for the Go servers) and starts one server on files.
func start(cfg config, name, work, files string, cpu int) (*server, error) {
	switch name {
	case "nginx":
		dir := filepath.Join(work, "nginx")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		return startNginx(dir, files, cpu)
	case "net/http":
		bin, err := build(work, "./tools/benchhttp/fileserver")
		if err != nil {
			return nil, err
		}
		return startProgram(name, cpu, bin, "-root", files)
	case "capstone":
		bin, err := build(work, "./"+cfg.capstone)
		if err != nil {
			return nil, err
		}
		return startProgram(name, cpu, bin, "-q", "-root", files, "-addr", "127.0.0.1:0")
	}
	return nil, fmt.Errorf("unknown server %q (capstone, nginx, net/http)", name)
}

// build compiles a Go program of the repository into work.
func build(work, pkg string) (string, error) {
	bin := filepath.Join(work, filepath.Base(pkg))
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// findCapstone is the last chapter program whose main.go defines -root:
// the book's static file server.
func findCapstone() string {
	dirs, _ := filepath.Glob("code/[0-9][0-9]-*")
	slices.Reverse(dirs)
	for _, d := range dirs {
		if src, err := os.ReadFile(filepath.Join(d, "main.go")); err == nil && strings.Contains(string(src), `"root"`) {
			return d
		}
	}
	return ""
}

// measure runs every load against srv, then opens the idle connections.
func measure(cfg config, srv *server, cpu int) ([]row, float64, error) {
	ctx := context.Background()
	pid := srv.cmd.Process.Pid
	// Warm up: page cache, nginx's open_file_cache, Go's heap.
	if _, err := runWrk(ctx, "http://"+srv.addr+cfg.files[0], 10, time.Second, cpu); err != nil {
		return nil, 0, err
	}
	var rows []row
	for _, file := range cfg.files {
		// wrk counts a redirect as a success (net/http's FileServer answers
		// /index.html with one): every path must give 200 first.
		c, err := fetchOnce(srv.addr, file)
		if err != nil {
			return nil, 0, err
		}
		c.Close()
		for _, n := range cfg.conns {
			before := cpuTime(pid)
			l, err := runWrk(ctx, "http://"+srv.addr+file, n, cfg.d, cpu)
			if err != nil {
				return nil, 0, err
			}
			used := cpuTime(pid) - before
			rows = append(rows, row{server: srv.name, file: file, conns: n, load: l, cpu: used / time.Duration(l.requests)})
			fmt.Fprintf(os.Stderr, "%-8s %-10s %5d conns: %8.0f req/s\n", srv.name, file, n, l.rps)
		}
	}
	if cfg.idle == 0 {
		return rows, 0, nil
	}
	before := rss(pid)
	conns, err := idleConns(srv.addr, cfg.files[0], cfg.idle)
	if err != nil {
		return nil, 0, err
	}
	time.Sleep(200 * time.Millisecond) // let the server settle after the last response
	per := float64(rss(pid)-before) / float64(len(conns))
	for _, c := range conns {
		c.Close()
	}
	return rows, per, nil
}
