//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cpuTicks is the CPU time the process pid has used so far, user and
// system, in clock ticks (1/100 s): /proc/PID/stat's 14th and 15th fields.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:])) // the name may hold spaces
	user, _ := strconv.Atoi(f[11])
	sys, _ := strconv.Atoi(f[12])
	return user + sys
}

// fetch is one GET on a connection of its own, read to the end.
func fetch(addr, path string) (int, string, error) {
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte(get(path))); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// dialSmall connects with a receive buffer of 4 KiB, set before connect
// so that the window the client offers is small from the start (set
// after, it shrinks a window already offered, which TCP handles badly:
// retransmissions, and seconds of back-off). The server then meets a
// full send buffer, EAGAIN, after the first few hundred KiB.
func dialSmall(t *testing.T, addr string) *client {
	t.Helper()
	d := net.Dialer{Timeout: wait, Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(wait))
	return &client{t, c.(*net.TCPConn), bufio.NewReader(c)}
}

// TestTenThousand holds 10,000 connections open at once, each with a
// request answered, and then asks again on every one of them.
func TestTenThousand(t *testing.T) {
	t.Parallel()
	srv := start(t, site(t), false)
	const n = 10000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.DialTimeout("tcp", srv.Addr(), wait)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	for round := range 2 {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i, c := range conns {
			wg.Go(func() {
				c.SetDeadline(time.Now().Add(4 * wait))
				if _, err := c.Write([]byte(get("/1k.bin"))); err != nil {
					errs <- err
					return
				}
				resp, err := http.ReadResponse(bufio.NewReader(io.LimitReader(c, 4096)), nil)
				if err == nil {
					var body []byte
					body, err = io.ReadAll(resp.Body)
					if err == nil && (resp.StatusCode != 200 || len(body) != 1024) {
						err = fmt.Errorf("%s, %d bytes", resp.Status, len(body))
					}
				}
				if err != nil {
					errs <- fmt.Errorf("round %d, connection %d: %w", round, i, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		failed := 0
		for err := range errs {
			if failed++; failed <= 5 {
				t.Error(err)
			}
		}
		if failed > 0 {
			t.Fatalf("round %d: %d of %d requests failed", round, failed, n)
		}
	}
}

// TestSlowloris: 1,000 clients send a request's head a byte at a time;
// ordinary clients are answered meanwhile, and each slow one is closed
// once its -header deadline passes, however steadily it trickles.
func TestSlowloris(t *testing.T) {
	t.Parallel()
	srv := start(t, site(t), false, "-header", "2s")
	const n = 1000
	closed := make(chan error, n)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	for range n {
		c, err := net.DialTimeout("tcp", srv.Addr(), wait)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer c.Close()
			req := "GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + strings.Repeat("z", 1000)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := c.Write([]byte{req[i%len(req)]}); err != nil {
					closed <- nil // the server closed it: what the test waits for
					return
				}
			}
		})
	}
	// Ordinary clients, while the slow ones trickle.
	for i := range 200 {
		if status, body, err := fetch(srv.Addr(), "/1k.bin"); err != nil || status != 200 || len(body) != 1024 {
			t.Fatalf("ordinary client %d among the slow ones: %d, %d bytes, %v", i, status, len(body), err)
		}
	}
	deadline := time.After(6 * wait)
	for i := range n {
		select {
		case <-closed:
		case <-deadline:
			t.Fatalf("%d of %d slow clients still connected", n-i, n)
		}
	}
	if status, _, err := fetch(srv.Addr(), "/"); err != nil || status != 200 {
		t.Fatalf("after the slow clients: %d, %v", status, err)
	}
}

// TestOutOfDescriptors lowers the running server's RLIMIT_NOFILE to what
// it holds plus 3 (prlimit), and connects 20 clients. Three are served;
// the others wait in the accept queue, while the server, not accepting,
// uses next to no CPU; clients that leave let the waiting ones in, and
// every one of the 20 is answered, the first three included, again.
func TestOutOfDescriptors(t *testing.T) {
	t.Parallel()
	srv := start(t, site(t), false, "-pause", "200ms", "-loops", "1")
	// The files, cached: a file that is not needs a descriptor to be read.
	for _, p := range []string{"/1k.bin", "/style.css"} {
		if status, _, err := fetch(srv.Addr(), p); status != 200 || err != nil {
			t.Fatalf("GET %s: %d, %v", p, status, err)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", srv.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	limit := strconv.Itoa(len(fds) + 3)
	if out, err := exec.Command("prlimit", "--pid", strconv.Itoa(srv.Pid()), "--nofile="+limit+":"+limit).CombinedOutput(); err != nil {
		t.Fatalf("prlimit: %v\n%s", err, out)
	}
	var clients []*client
	for range 20 {
		c := dial(t, srv.Addr())
		c.send(get("/1k.bin"))
		clients = append(clients, c)
	}
	for i, c := range clients[:3] {
		if resp, body := c.answer("GET"); resp.StatusCode != 200 || len(body) != 1024 {
			t.Fatalf("client %d: %s, %d bytes", i, resp.Status, len(body))
		}
	}
	// Ten pauses of 200 ms, each ended by a failed accept4: the loop
	// wakes about ten times in those two seconds, not millions.
	srv.WaitForN("not accepting for", 1)
	before := cpuTicks(t, srv.Pid())
	srv.WaitForN("not accepting for", 11)
	if used := cpuTicks(t, srv.Pid()) - before; used > 20 {
		t.Errorf("out of descriptors, over ten pauses the server used %d ticks of CPU: it spins", used)
	}
	// The served clients are still served.
	for i, c := range clients[:3] {
		c.send(get("/style.css"))
		if resp, body := c.answer("GET"); resp.StatusCode != 200 || body != "body{}\n" {
			t.Fatalf("served client %d, asking again while the server is out of descriptors: %s %q", i, resp.Status, body)
		}
	}
	// Each that leaves lets one more in.
	for i := 3; i < len(clients); i++ {
		clients[i-3].c.Close()
		if resp, body := clients[i].answer("GET"); resp.StatusCode != 200 || len(body) != 1024 {
			t.Fatalf("client %d: %s, %d bytes", i, resp.Status, len(body))
		}
	}
}

// TestSIGTERMOutOfDescriptors: SIGTERM while accepting is paused for want
// of descriptors. The clients served get their answers and then end of file
// (a lingering close: between requests, they are closed); the clients still
// in the accept queue, which drain could not accept either, are reset when
// the listening socket closes; the server exits 0.
func TestSIGTERMOutOfDescriptors(t *testing.T) {
	t.Parallel()
	srv := start(t, site(t), false, "-pause", "10s", "-loops", "1")
	if status, _, err := fetch(srv.Addr(), "/1k.bin"); status != 200 || err != nil {
		t.Fatalf("GET /1k.bin: %d, %v", status, err)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", srv.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	limit := strconv.Itoa(len(fds) + 3)
	if out, err := exec.Command("prlimit", "--pid", strconv.Itoa(srv.Pid()), "--nofile="+limit+":"+limit).CombinedOutput(); err != nil {
		t.Fatalf("prlimit: %v\n%s", err, out)
	}
	var clients []*client
	for range 6 {
		c := dial(t, srv.Addr())
		c.send(get("/1k.bin"))
		clients = append(clients, c)
	}
	// Those accepted are the first (the queue is first in, first out): 3,
	// or 4 if the server had not yet closed the connection of the fetch.
	srv.WaitForN("not accepting for", 1)
	served := strings.Count(srv.Output(), "connection: ") - 1
	if served < 3 || served >= len(clients) {
		t.Fatalf("the server accepted %d of %d clients at its limit; want 3 or 4", served, len(clients))
	}
	for i, c := range clients[:served] {
		if resp, body := c.answer("GET"); resp.StatusCode != 200 || len(body) != 1024 {
			t.Fatalf("client %d: %s, %d bytes", i, resp.Status, len(body))
		}
	}
	if err := syscall.Kill(srv.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients[:served] {
		if n, err := c.r.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("served client %d after SIGTERM: read %d bytes, %v; want end of file", i, n, err)
		}
		c.c.Close() // the server waits for it to close its end too
	}
	for i, c := range clients[served:] {
		if n, err := c.r.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("queued client %d after SIGTERM: read %d bytes, %v; want a reset", served+i, n, err)
		}
	}
	srv.Wait()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM", code)
	}
}

// TestVanish: clients that reset their connection in the middle of a
// large answer (SO_LINGER 0, then close: RST) leave the server serving.
func TestVanish(t *testing.T) {
	t.Parallel()
	srv := start(t, site(t), false)
	for range 20 {
		c := dialSmall(t, srv.Addr())
		c.send(get("/big.bin"))
		if _, err := io.ReadFull(c.r, make([]byte, 8192)); err != nil {
			t.Fatal(err)
		}
		c.c.SetLinger(0)
		c.c.Close()
	}
	for range 5 {
		if status, body, err := fetch(srv.Addr(), "/big.bin"); err != nil || status != 200 || body != pattern(1<<20) {
			t.Fatalf("after clients vanished: %d, %d bytes, %v", status, len(body), err)
		}
	}
	srv.Signal(syscall.SIGTERM)
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM", code)
	}
}

// TestSIGTERM: under load, SIGTERM ends the server with status 0, and no
// answer is lost: the large answer under way is sent to its last byte, a
// request half sent before the signal is answered (with Connection:
// close) once the rest comes, and every request of the clients that keep
// asking either gets its whole answer or finds its connection closed
// before it had any byte of one.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	srv := start(t, site(t), false, "-loops", "2")
	slow := dialSmall(t, srv.Addr())
	slow.send(get("/big.bin"))
	if _, err := slow.r.Peek(100); err != nil {
		t.Fatal(err)
	}
	half := dial(t, srv.Addr())
	half.send("GET /style.css HTTP/1.1\r\n")

	var wg sync.WaitGroup
	var mu sync.Mutex
	answered, cut := 0, 0
	var problems []string
	for range 20 {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", srv.Addr(), wait)
			if err != nil {
				return // the server stopped listening before this one came
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * wait))
			r := bufio.NewReader(c)
			for {
				if _, err := c.Write([]byte(get("/1k.bin"))); err != nil {
					break
				}
				if _, err := r.Peek(1); err != nil { // closed before any byte: not answered, not lost
					mu.Lock()
					cut++
					mu.Unlock()
					break
				}
				resp, err := http.ReadResponse(r, nil)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
				}
				mu.Lock()
				if err != nil || resp.StatusCode != 200 || len(body) != 1024 {
					problems = append(problems, fmt.Sprintf("a broken answer: %v", err))
				}
				answered++
				mu.Unlock()
				if err != nil || resp.Close {
					break
				}
			}
		})
	}
	for i := 0; ; i++ { // load: some answers first (at most 10 s)
		mu.Lock()
		n := answered
		mu.Unlock()
		if n >= 1000 || i == 1000 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.Send(syscall.SIGTERM)
	// The listening socket closes: wait for that (bounded), then finish
	// the half-sent request.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", srv.Addr(), wait)
		if err != nil {
			break
		}
		c.Close()
		if i == 1000 {
			t.Fatal("still accepting after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	half.c.SetDeadline(time.Now().Add(wait))
	slow.c.SetDeadline(time.Now().Add(wait))
	half.send("Host: localhost\r\n\r\n")
	if resp, body := half.answer("GET"); resp.StatusCode != 200 || body != "body{}\n" || !resp.Close {
		t.Errorf("the half-sent request: %s %q, Connection: close %v; want 200, the file, and close", resp.Status, body, resp.Close)
	}
	half.c.Close()
	all, err := io.ReadAll(slow.r) // head and body, to the server's FIN
	if err != nil || !strings.HasPrefix(string(all), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(all), "\r\n\r\n"+pattern(1<<20)) {
		t.Errorf("the large answer under way: %d bytes, %v; want its head and the whole file", len(all), err)
	}
	slow.c.Close() // the server, lingering, waits for this end of file to exit
	wg.Wait()
	srv.Wait()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM", code)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if len(problems) > 0 || answered == 0 {
		t.Fatalf("%d answered, %d cut before an answer began, %d broken", answered, cut, len(problems))
	}
	t.Logf("%d answered, %d connections closed between requests", answered, cut)
}
