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
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestMain builds the program once for all the tests, not once per session
// (booktest.Run).
func TestMain(m *testing.M) { os.Exit(booktest.Run(m)) }

// wait bounds every read and connect of the tests.
const wait = 10 * time.Second

// client is one connection of the test's, with a reader for the answers.
type client struct {
	t *testing.T
	c *net.TCPConn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(wait))
	return &client{t, c.(*net.TCPConn), bufio.NewReader(c)}
}

// send writes raw bytes, as they are: no client library fixes them.
func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.c.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// answer reads one response (net/http reads it: the server's own parser
// is not asked to judge the server) and its body.
func (c *client) answer(method string) (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.r, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading a response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading a response's body: %v", err)
	}
	return resp, string(body)
}

// closed reports whether the server has closed the connection: the next
// read is end of file (or a reset), not a byte and not a time-out.
func (c *client) closed() (bool, error) {
	_, err := c.r.ReadByte()
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		return false, err
	}
	return errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset"), err
}

// get is a request with what HTTP/1.1 requires and nothing else.
func get(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n" }

func post(path, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
}

// TestTranscript records the server with two clients, in a fixed order:
// A asks for / and then, on the same connection, for its head; then it
// sends three requests in one write and reads the three answers; B sends
// a request with both Content-Length and Transfer-Encoding, and is
// answered 400 and closed; A leaves; Ctrl-C.
func TestTranscript(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-addr", "127.0.0.1:0")
	s.Replace(`LookupPort\(tcp, "0"\) = 0`, `LookupPort(tcp, "8080") = 8080`)
	s.Replace(`127\.0\.0\.1:0\b`, "127.0.0.1:8080")
	// A signal (Go's preemption, or the Ctrl-C itself) now and then ends a
	// wait with EINTR, and the program waits again: a line some runs print
	// and others do not, which the book does not show.
	s.Replace(`(?m)^(?:epoll_wait|poll)\(.*\) = -1 EINTR \(Interrupted system call\)\n`, "")

	a := dial(t, srv.Addr())
	a.send(get("/"))
	if resp, body := a.answer("GET"); resp.StatusCode != 200 || body != page {
		t.Fatalf("GET /: %s %q, want 200 %q", resp.Status, body, page)
	}
	srv.WaitFor("EAGAIN")
	a.send("HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	if resp, body := a.answer("HEAD"); resp.StatusCode != 200 || body != "" || resp.ContentLength != int64(len(page)) {
		t.Fatalf("HEAD /: %s, body %q, Content-Length %d; want 200, no body, %d", resp.Status, body, resp.ContentLength, len(page))
	}
	srv.WaitForN("EAGAIN", 2)
	a.send(get("/") + post("/echo", "ping") + get("/nowhere"))
	for _, want := range []struct {
		status int
		body   string
	}{{200, page}, {200, "ping"}, {404, "not found\n"}} {
		if resp, body := a.answer("GET"); resp.StatusCode != want.status || body != want.body {
			t.Fatalf("pipelined: %s %q, want %d %q", resp.Status, body, want.status, want.body)
		}
	}
	srv.WaitForN("EAGAIN", 3)

	b := dial(t, srv.Addr())
	b.send("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if resp, _ := b.answer("POST"); resp.StatusCode != 400 || !resp.Close {
		t.Fatalf("TE and CL: %s, close %v; want 400 and Connection: close", resp.Status, resp.Close)
	}
	if ok, err := b.closed(); !ok {
		t.Fatalf("after a 400: %v, want the connection closed", err)
	}
	srv.WaitFor("close(6) = 0")
	a.c.Close()
	srv.WaitFor("close(5) = 0")
	srv.Interrupt()
	s.Check("run")
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGINT, want 0", code)
	}
	// The three pipelined requests came in one read, and were answered in
	// one write.
	if !strings.Contains(srv.Output(), "GET / HTTP/1.1 -> 200, 13 bytes\nPOST /echo HTTP/1.1 -> 200, 4 bytes\nGET /nowhere HTTP/1.1 -> 404, 10 bytes\nwrite(5, ") {
		t.Errorf("want three answers narrated after one read, then one write:\n%s", srv.Output())
	}
}

// TestRoutes: what the server serves, and what it answers otherwise: the
// page for GET and HEAD (HEAD's with the length GET's body would have, and
// no body), the body back for POST /echo, 405 with Allow for a known path
// and another method, 404 for the rest. A query is not part of the path;
// the absolute form names the same resource. None of these closes.
func TestRoutes(t *testing.T) {
	t.Parallel()
	srv := booktest.New(t).Start("server", "-q")
	c := dial(t, srv.Addr())
	for _, tc := range []struct {
		req, method string
		status      int
		body, allow string
	}{
		{get("/"), "GET", 200, page, ""},
		{"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n", "HEAD", 200, "", ""},
		{get("/?lang=en"), "GET", 200, page, ""},
		{"GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\n\r\n", "GET", 200, page, ""},
		{post("/echo", "hello, echo"), "POST", 200, "hello, echo", ""},
		{post("/echo", ""), "POST", 200, "", ""},
		{post("/", "x"), "POST", 405, "GET or HEAD only\n", "GET, HEAD"},
		{get("/echo"), "GET", 405, "POST only\n", "POST"},
		{get("/missing"), "GET", 404, "not found\n", ""},
		{"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello", "GET", 200, page, ""},
	} {
		c.send(tc.req)
		resp, body := c.answer(tc.method)
		if resp.StatusCode != tc.status || body != tc.body || resp.Header.Get("Allow") != tc.allow || resp.Close {
			t.Errorf("%q: %s %q Allow %q close %v; want %d %q Allow %q, kept open", tc.req, resp.Status, body, resp.Header.Get("Allow"), resp.Close, tc.status, tc.body, tc.allow)
		}
		if tc.method == "HEAD" && resp.Header.Get("Content-Length") != strconv.Itoa(len(page)) {
			t.Errorf("HEAD: Content-Length %q, want GET's, %d", resp.Header.Get("Content-Length"), len(page))
		}
		if _, err := time.Parse(http.TimeFormat, resp.Header.Get("Date")); err != nil {
			t.Errorf("%q: Date %q: %v", tc.req, resp.Header.Get("Date"), err)
		}
	}
	srv.Interrupt()
}

// bigLine is a request whose request line is exactly n bytes long, CRLF
// not counted.
func bigLine(n int) string {
	const pre, post = "GET /", " HTTP/1.1"
	return pre + strings.Repeat("a", n-len(pre)-len(post)) + post + "\r\nHost: localhost\r\n\r\n"
}

// bigHeader is a request whose header section (its field lines and the
// empty line, CRLFs counted) is exactly n bytes.
func bigHeader(n int) string {
	h := "Host: localhost\r\n"
	pad := n - len(h) - len("X: \r\n") - 2
	return "GET / HTTP/1.1\r\n" + h + "X: " + strings.Repeat("b", pad) + "\r\n\r\n"
}

// fields is a request with n header fields, Host one of them.
func fields(n int) string {
	var b strings.Builder
	b.WriteString("GET / HTTP/1.1\r\nHost: localhost\r\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "X-%d: %d\r\n", i, i)
	}
	return b.String() + "\r\n"
}

// The requests the parser refuses, and with what status. Each is a
// request of its own on a new connection.
var refused = []struct {
	name, req string
	status    int
}{
	{"bare LF in the request line", "GET / HTTP/1.1\nHost: localhost\r\n\r\n", 400},
	{"bare LF in a field line", "GET / HTTP/1.1\r\nHost: localhost\n\r\n", 400},
	{"bare LF ending the header section", "GET / HTTP/1.1\r\nHost: localhost\r\n\n", 400},
	{"bare CR", "GET / HTTP/1.1\r\nHost: local\rhost\r\n\r\n", 400},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: localhost\r\nX: a\r\n b\r\n\r\n", 400},
	{"space before the colon", "GET / HTTP/1.1\r\nHost : localhost\r\n\r\n", 400},
	{"tab before the colon", "GET / HTTP/1.1\r\nHost: localhost\r\nX\t: a\r\n\r\n", 400},
	{"a field line with no colon", "GET / HTTP/1.1\r\nHost: localhost\r\nX\r\n\r\n", 400},
	{"an invalid field name", "GET / HTTP/1.1\r\nHost: localhost\r\nX@Y: a\r\n\r\n", 400},
	{"NUL in a field value", "GET / HTTP/1.1\r\nHost: localhost\r\nX: a\x00b\r\n\r\n", 400},
	{"two Content-Lengths, equal", "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", 400},
	{"two Content-Lengths, different", "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi!", 400},
	{"a Content-Length list", "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2, 2\r\n\r\nhi", 400},
	{"a signed Content-Length", "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: +2\r\n\r\nhi", 400},
	{"Transfer-Encoding and Content-Length", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400},
	{"a final coding that is not chunked", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
	{"chunked with a Kelvin sign for its k", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chun\u212aed\r\n\r\n0\r\n\r\n", 400},
	{"chunked twice", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400},
	{"a coding not implemented", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
	{"Transfer-Encoding in HTTP/1.0", "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"a chunk size that is not hexadecimal", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
	{"a chunk size that overflows", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n", 400},
	{"a chunk size with a sign", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400},
	{"whitespace after a chunk size", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n", 400},
	{"chunk data longer than its size", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", 400},
	{"no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400},
	{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
	{"an invalid Host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
	{"a target that is not a path", "GET index.html HTTP/1.1\r\nHost: localhost\r\n\r\n", 400},
	{"two spaces in the request line", "GET  / HTTP/1.1\r\nHost: localhost\r\n\r\n", 400},
	{"a lower-case version", "GET / http/1.1\r\nHost: localhost\r\n\r\n", 400},
	{"a method not implemented", "PUT / HTTP/1.1\r\nHost: localhost\r\n\r\n", 501},
	{"a method nobody knows", "BREW / HTTP/1.1\r\nHost: localhost\r\n\r\n", 501},
	{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 505},
	{"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 505},
	{"a body over -maxbody", post("/echo", strings.Repeat("c", 1025)), 413},
	{"a chunked body over -maxbody", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + strings.Repeat("c", 1024) + "\r\n1\r\nc\r\n0\r\n\r\n", 413},
	{"a request line over 8 KiB", bigLine(8193), 414},
	{"a request line over 8 KiB, unfinished", "GET /" + strings.Repeat("e", 8200), 414},
	{"a header section over 16 KiB", bigHeader(16385), 431},
	{"101 header fields", fields(101), 431},
}

// TestRefused sends each request the parser must refuse on a connection
// of its own: each is answered with its status and Connection: close, and
// the connection is closed. At the end the server holds no descriptor but
// its listening socket and its epoll instance.
func TestRefused(t *testing.T) {
	t.Parallel()
	srv := booktest.New(t).Start("server", "-q", "-maxbody", "1024")
	for _, tc := range refused {
		c := dial(t, srv.Addr())
		c.send(tc.req)
		resp, body := c.answer("GET")
		if resp.StatusCode != tc.status || !resp.Close { // net/http takes "Connection: close" out of the Header
			t.Errorf("%s: %s, close %v; want %d and Connection: close", tc.name, resp.Status, resp.Close, tc.status)
		}
		if ok, err := c.closed(); !ok {
			t.Errorf("%s: after the %d: %v, want the connection closed", tc.name, resp.StatusCode, err)
		}
		// The server said why on stderr before it answered; the test's
		// copy of its output may lag a little behind: wait (bounded).
		srv.WaitFor(strings.TrimSpace(body))
		c.c.Close()
	}
	want := []string{"0", "1", "2", "3 socket", "4 anon_inode:[eventpoll]"}
	if got := openFDs(t, srv.Pid()); !slices.Equal(got[3:], want[3:]) {
		t.Errorf("after every client was refused: descriptors %q, want %q", got, want)
	}
	srv.Interrupt()
}

// openFDs lists the descriptors process pid has open, in order, with
// what each is (for a socket, only that).
func openFDs(t *testing.T, pid int) []string {
	t.Helper()
	var out []string
	for fd := range 64 {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
		if err != nil {
			continue
		}
		if strings.HasPrefix(target, "socket:") {
			target = "socket"
		}
		out = append(out, fmt.Sprintf("%d %s", fd, target))
	}
	return out
}

// TestLimits: each limit is a boundary: at it the request is taken, one
// byte (or field) over it, refused.
func TestLimits(t *testing.T) {
	t.Parallel()
	srv := booktest.New(t).Start("server", "-q", "-maxbody", "1024")
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"a request line of 8 KiB", bigLine(8192), 404},
		{"one byte more", bigLine(8193), 414},
		{"a header section of 16 KiB", bigHeader(16384), 200},
		{"one byte more", bigHeader(16385), 431},
		{"100 header fields", fields(100), 200},
		{"101", fields(101), 431},
		{"a body of -maxbody bytes", post("/echo", strings.Repeat("d", 1024)), 200},
		{"one byte more", post("/echo", strings.Repeat("d", 1025)), 413},
	} {
		c := dial(t, srv.Addr())
		c.send(tc.req)
		if resp, _ := c.answer("GET"); resp.StatusCode != tc.status {
			t.Errorf("%s: %s, want %d", tc.name, resp.Status, tc.status)
		}
		c.c.Close()
	}
	srv.Interrupt()
}

// TestPipelining: three requests in one write are answered in order, and
// a request split over many reads (here one byte per read: -bufsize 1)
// is put together, whatever the cut. Every request of the test, and all
// of them in one stream, one byte per write.
func TestPipelining(t *testing.T) {
	t.Parallel()
	srv := booktest.New(t).Start("server", "-q", "-bufsize", "1")
	stream := get("/") + post("/echo", "two") + get("/three") +
		"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfour\r\n1;x=y\r\n!\r\n0\r\nTrailer: t\r\n\r\n"
	want := []struct {
		status int
		body   string
	}{{200, page}, {200, "two"}, {404, "not found\n"}, {200, "four!"}}
	c := dial(t, srv.Addr())
	c.send(stream)
	for _, w := range want {
		if resp, body := c.answer("GET"); resp.StatusCode != w.status || body != w.body {
			t.Fatalf("pipelined: %s %q, want %d %q", resp.Status, body, w.status, w.body)
		}
	}
	d := dial(t, srv.Addr())
	d.c.SetNoDelay(true)
	for i := range len(stream) {
		d.send(stream[i : i+1])
	}
	for _, w := range want {
		if resp, body := d.answer("GET"); resp.StatusCode != w.status || body != w.body {
			t.Fatalf("one byte per write: %s %q, want %d %q", resp.Status, body, w.status, w.body)
		}
	}
	srv.Interrupt()
}

// TestKeepAlive: HTTP/1.1 keeps the connection open unless a request
// says Connection: close; HTTP/1.0 closes it unless a request says
// Connection: keep-alive, which the answer says back. The test leaves no
// descriptor of its own open (it runs alone, so that others' are not
// taken for its).
func TestKeepAlive(t *testing.T) {
	booktest.CheckFDs(t)
	srv := booktest.New(t).Start("server", "-q")
	c := dial(t, srv.Addr())
	for range 3 {
		c.send(get("/"))
		if resp, _ := c.answer("GET"); resp.StatusCode != 200 || resp.Close {
			t.Fatalf("HTTP/1.1: %s, close %v; want 200, kept open", resp.Status, resp.Close)
		}
	}
	c.send("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" + get("/ignored"))
	if resp, _ := c.answer("GET"); resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("Connection: close: %s, close %v; want 200 and Connection: close", resp.Status, resp.Close)
	}
	if ok, err := c.closed(); !ok {
		t.Fatalf("after Connection: close: %v, want the connection closed, the request after it unanswered", err)
	}

	d := dial(t, srv.Addr())
	d.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	if resp, _ := d.answer("GET"); resp.StatusCode != 200 || resp.Header.Get("Connection") != "keep-alive" {
		t.Fatalf("HTTP/1.0 with keep-alive: %s, Connection %q; want 200, keep-alive", resp.Status, resp.Header.Get("Connection"))
	}
	d.send("GET / HTTP/1.0\r\n\r\n")
	if resp, _ := d.answer("GET"); resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("HTTP/1.0: %s, close %v; want 200 and Connection: close", resp.Status, resp.Close)
	}
	if ok, err := d.closed(); !ok {
		t.Fatalf("after an HTTP/1.0 request: %v, want the connection closed", err)
	}
	srv.Interrupt()
}

// TestCurl: a real client. curl sends a body with Content-Length, then in
// the chunked coding (it reads it from a pipe, so it cannot know the
// length), and keeps one connection for two URLs.
func TestCurl(t *testing.T) {
	t.Parallel()
	srv := booktest.New(t).Start("server", "-q")
	url := "http://" + srv.Addr()
	for _, tc := range []struct {
		args  []string
		stdin string
		want  []string
	}{
		{[]string{"-sv", "--data-binary", "hello, curl", url + "/echo"}, "", []string{"> Content-Length: 11", "hello, curl"}},
		{[]string{"-sv", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", url + "/echo"}, "in chunks",
			[]string{"> Transfer-Encoding: chunked", "in chunks"}},
		{[]string{"-sv", url + "/", url + "/"}, "", []string{"Re-using existing connection"}},
	} {
		out := curl(t, tc.stdin, tc.args...)
		for _, want := range tc.want {
			if !strings.Contains(out, want) {
				t.Errorf("curl %s: want %q in:\n%s", strings.Join(tc.args, " "), want, out)
			}
		}
	}
	srv.Interrupt()
}

// curl runs curl, bounded in time, and returns what it printed.
func curl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("these tests need curl (Debian package curl)")
	}
	cmd := exec.CommandContext(booktest.Context(t), "curl", append([]string{"--max-time", "10"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s: %v:\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
