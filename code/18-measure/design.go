//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// design is one of the book's servers, run as the chapter that wrote it
// runs it.
type design struct {
	name   string
	dir    string   // the program, from the module's root
	args   []string // the flags that choose this design
	serves int      // how many clients it serves at once; 0: all of them
	idle   int      // the most idle connections to hold; 0: -idle
	why    string   // why idle is smaller, for the table
}

// designs are Part I's iterative server and Part III's, in the book's
// order. The limits on idle connections are set by memory and by Go's
// limit on threads, not by the designs: see the chapter.
func designs() []design {
	return []design{
		{name: "iterative", dir: "code/12-names", args: []string{"-backlog", "4096"}, serves: 1,
			idle: 1000, why: "one at a time; the rest wait in the listen queue"},
		{name: "process", dir: "code/13-process", args: []string{"-backlog", "4096"},
			idle: 250, why: "a process each: GBs of memory at 10,000"},
		{name: "threads", dir: "code/14-threads", args: []string{"-backlog", "4096"},
			idle: 2000, why: "a thread each; Go stops a program at 10,000 threads"},
		{name: "netpoller", dir: "code/14-threads", args: []string{"-backlog", "4096", "-netpoll"}},
		{name: "pool", dir: "code/15-pools", args: []string{"-backlog", "4096", "-design", "pool", "-workers", "16"}, serves: 16,
			idle: 1000, why: "16 workers; the rest wait in the queue"},
		{name: "poll", dir: "code/16-poll", args: []string{"-backlog", "4096"}},
		{name: "epoll", dir: "code/17-epoll", args: []string{"-backlog", "4096"}},
	}
}

// names are the designs' names, in the table's order.
func names() []string {
	var list []string
	for _, d := range designs() {
		list = append(list, d.name)
	}
	return list
}

// serving is how many of n clients the design serves at once.
func (d design) serving(n int) int {
	if d.serves > 0 {
		return min(n, d.serves)
	}
	return n
}

// probeDesign starts the design and has it answer one narrated request,
// so that a design that does not serve stops the run before any number.
func probeDesign(n narrator, exe string, d design) error {
	srv, err := startServer(exe, d, pinned())
	if err != nil {
		return err
	}
	defer srv.stop()
	n.call(fmt.Sprintf("start(%s %s)", d.dir, strings.Join(d.args, " ")), fmt.Sprintf("listening on %s", srv.addr), nil)
	return probe(n, srv.addr)
}

// selectDesigns finds the designs -designs names.
func selectDesigns(list []string) ([]design, error) {
	var ds []design
	for _, name := range list {
		all := designs()
		i := slices.IndexFunc(all, func(d design) bool { return d.name == name })
		if i < 0 {
			return nil, fmt.Errorf("no design %q: want one of %s", name, strings.Join(names(), ", "))
		}
		ds = append(ds, all[i])
	}
	return ds, nil
}

// record creates the transcript file -record names, and writes its first
// lines: the pane and the command as a reader types it, without -record.
func record(name string) (*os.File, error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	args := []string{"go", "run", "./code/18-measure"}
	for i := 1; i < len(os.Args); i++ {
		if a := strings.TrimLeft(os.Args[i], "-"); a == "record" {
			i++ // and its value
		} else if !strings.HasPrefix(a, "record=") {
			args = append(args, os.Args[i])
		}
	}
	fmt.Fprintf(f, "=== bench\n$ %s\n", strings.Join(args, " "))
	return f, nil
}

// moduleRoot is the directory of the go.mod above the working directory:
// the programs are found from there, wherever the command runs.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from the book's repository")
		}
		dir = parent
	}
}

// build compiles each program the designs use, once, into a new
// temporary directory, bin, which the caller removes. A server
// run with go run would be a child of the go command: its PID would not be
// the one this program sees, and its /proc would not be the server's.
func build(ctx context.Context, ds []design) (exes map[string]string, bin string, err error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, "", err
	}
	if bin, err = os.MkdirTemp("", "18-measure-"); err != nil {
		return nil, "", err
	}
	exes = map[string]string{}
	for _, d := range ds {
		if exes[d.dir] != "" {
			continue
		}
		exe := filepath.Join(bin, filepath.Base(d.dir))
		cmd := exec.CommandContext(ctx, "go", "build", "-o", exe, "./"+d.dir)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, bin, fmt.Errorf("go build ./%s: %v\n%s", d.dir, err, out)
		}
		exes[d.dir] = exe
	}
	return exes, bin, nil
}

// server is one running design.
type server struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{} // closed when the process has ended and been waited for
}

// startServer runs a design on 127.0.0.1:0, quiet, pinned to CPU 0 when
// there are two CPUs or more, and waits (at most 10 s) for the address
// the kernel gave it, from its "listening on ADDR" line.
func startServer(exe string, d design, pin bool) (*server, error) {
	args := append([]string{exe, "-q", "-addr", "127.0.0.1:0"}, d.args...)
	if pin {
		args = append([]string{"taskset", "-c", "0"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	// A process group of its own, so that stop can end the server and
	// whatever it started (process per connection's children) together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Its errors about single clients (a reset when the load closes
	// mid-request) are kept, and shown only if it fails to start.
	var errs bytes.Buffer
	cmd.Stderr = &errs
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", d.name, err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok && s.addr == "" {
				s.addr = a
				found <- a
			}
		}
		cmd.Wait()
		close(s.done)
	}()
	select {
	case <-found:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("%s ended before listening: %v\n%s", d.name, cmd.ProcessState, errs.Bytes())
	case <-time.After(10 * time.Second):
		s.stop()
		return nil, fmt.Errorf("%s has not printed its \"listening on ADDR\" line after 10s", d.name)
	}
}

// pid is the server's. With taskset in front, it is still the server's:
// taskset sets the affinity and then execs the program in its own place.
func (s *server) pid() int { return s.cmd.Process.Pid }

// stop ends the server as Ctrl-C would, and waits for it (at most 5 s,
// then kills its whole process group).
func (s *server) stop() {
	syscall.Kill(-s.pid(), syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-s.pid(), syscall.SIGKILL)
		<-s.done
	}
}

// pinned reports whether this machine has a CPU for the servers and
// another for the load, and taskset (util-linux) to put the servers on
// theirs.
func pinned() bool {
	_, err := exec.LookPath("taskset")
	return runtime.NumCPU() >= 2 && err == nil
}
