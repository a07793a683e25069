package main

import (
	"bufio"
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

//go:embed nginx.conf
var nginxConf string

// A server is one of the servers compared, running.
type server struct {
	name string
	cmd  *exec.Cmd
	addr string
}

// pinned runs argv on CPU cpu when cpu >= 0 (taskset execs it: same PID).
func pinned(cpu int, argv ...string) *exec.Cmd {
	if cpu >= 0 {
		argv = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = procAttr()
	return cmd
}

// startNginx writes nginx.conf into dir, filled in, and starts nginx on
// it. It is ready when a connection to its port succeeds.
func startNginx(dir, files string, cpu int) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	var conf bytes.Buffer
	tmpl := template.Must(template.New("nginx.conf").Parse(nginxConf))
	err = tmpl.Execute(&conf, map[string]any{"Dir": dir, "Files": files, "Port": port, "Root": os.Geteuid() == 0})
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, conf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	srv := &server{name: "nginx", addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	srv.cmd = pinned(cpu, "nginx", "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"))
	var out bytes.Buffer
	srv.cmd.Stdout, srv.cmd.Stderr = &out, &out
	if err := srv.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", srv.addr); err == nil {
			c.Close()
			return srv, nil
		}
	}
	srv.stop()
	log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
	return nil, fmt.Errorf("nginx did not listen on %s in 10 s:\n%s%s", srv.addr, out.Bytes(), log)
}

// freePort asks the kernel for a free port on loopback and gives it back
// for nginx to bind, which cannot be told to take port 0 and say which.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startProgram starts a Go server that prints "listening on ADDR" once
// it listens, as every program of the book does.
func startProgram(name string, cpu int, argv ...string) (*server, error) {
	srv := &server{name: name, cmd: pinned(cpu, argv...)}
	stdout, err := srv.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	srv.cmd.Stderr = &stderr
	if err := srv.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addr <- a
				break
			}
		}
		io.Copy(io.Discard, stdout) // a server that narrates must never block on a full pipe
	}()
	select {
	case srv.addr = <-addr:
		return srv, nil
	case <-time.After(30 * time.Second):
		srv.stop()
		return nil, fmt.Errorf("%s has not printed \"listening on ADDR\" in 30 s:\n%s", name, stderr.Bytes())
	}
}

// stop ends the server with SIGTERM, as a service manager would, and
// with SIGKILL if it has not ended after 5 s.
func (s *server) stop() {
	pgid := -s.cmd.Process.Pid
	syscall.Kill(pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(pgid, syscall.SIGKILL)
		<-done
	}
}

// prepareFiles copies the book's site into dir and adds a 1 KiB and a
// 1 MiB file of random bytes. Everything is readable by all: nginx's
// worker may run as another user.
func prepareFiles(site, dir string) error {
	err := filepath.WalkDir(site, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(site, path)
		to := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, 0o644)
	})
	if err != nil {
		return fmt.Errorf("copy %s: %w", site, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.html")); err != nil {
		return errors.New("no index.html in " + site + ": run make site first")
	}
	rng := rand.NewChaCha8([32]byte{'b', 'o', 'o', 'k'})
	for name, size := range map[string]int{"1k.bin": 1 << 10, "1m.bin": 1 << 20} {
		data := make([]byte, size)
		rng.Read(data)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return os.Chmod(dir, 0o755)
}
