//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
	"golang.org/x/sys/unix"
)

// serverLimits are the program's own (main.go): no body at all.
var serverLimits = limits{line: 8 << 10, header: 16 << 10, fields: 100, body: 0}

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

// manyFields is a request with n header fields, Host one of them.
func manyFields(n int) string {
	var b strings.Builder
	b.WriteString("GET / HTTP/1.1\r\nHost: localhost\r\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "X-%d: %d\r\n", i, i)
	}
	return b.String() + "\r\n"
}

// refused is chapter 19's table of requests its parser refuses
// (code/19-http/main_test.go), with this server's statuses: the same
// everywhere but where this server's limit on bodies, 0 bytes, decides
// first. And two of this chapter's own.
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
	{"chunked twice", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400},
	{"a coding not implemented", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
	{"Transfer-Encoding in HTTP/1.0", "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"a chunk size that is not hexadecimal", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
	{"a chunk size that overflows", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n", 400},
	{"a chunk size with a sign", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400},
	{"whitespace after a chunk size", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n", 400},
	// Chapter 19 (-maxbody 1024): 400, for the bytes after the chunk.
	// Here the chunk's size alone is over the limit of 0.
	{"chunk data longer than its size", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", 413},
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
	{"a body over the limit", "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1025\r\n\r\n" + strings.Repeat("c", 1025), 413},
	{"a chunked body over the limit", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + strings.Repeat("c", 1024) + "\r\n1\r\nc\r\n0\r\n\r\n", 413},
	{"a request line over 8 KiB", bigLine(8193), 414},
	{"a request line over 8 KiB, unfinished", "GET /" + strings.Repeat("e", 8200), 414},
	{"a header section over 16 KiB", bigHeader(16385), 431},
	{"101 header fields", manyFields(101), 431},
	{"chunked with a Kelvin sign for its k", "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chun\u212aed\r\n\r\n0\r\n\r\n", 400},
	// This server's own: it takes no body.
	{"a body of one byte", "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n\r\nx", 413},
}

// TestRefused sends each request of refused to the server on a
// connection of its own: each is answered with its status and
// Connection: close, and the connection is closed.
func TestRefused(t *testing.T) {
	t.Parallel()
	srv := start(t, site(t), false)
	for _, tc := range refused {
		c := dial(t, srv.Addr())
		c.send(tc.req)
		resp, _ := c.answer("GET")
		if resp.StatusCode != tc.status || !resp.Close {
			t.Errorf("%s: %s, close %v; want %d and Connection: close", tc.name, resp.Status, resp.Close, tc.status)
		}
		if _, err := c.r.ReadByte(); err != io.EOF && (err == nil || !strings.Contains(err.Error(), "reset")) {
			t.Errorf("%s: after the %d: %v, want the connection closed", tc.name, resp.StatusCode, err)
		}
		c.c.Close()
	}
	srv.Interrupt()
}

// TestParse: what the parser makes of the requests it takes, as slices
// of the buffer, and where each ends.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		req, method, path, host string
		minor                   int
		close                   bool
		fields                  []string // name=value
	}{
		{"GET /a/b?c HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/a/b", "x", 1, false, []string{"Host=x"}},
		{"HEAD / HTTP/1.0\r\n\r\n", "HEAD", "/", "", 0, true, nil},
		{"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", "GET", "/", "", 0, false, []string{"Connection=Keep-Alive"}},
		{"GET / HTTP/1.2\r\nhost: x\r\nConnection: Upgrade, , close\r\n\r\n", "GET", "/", "x", 1, true, []string{"host=x", "Connection=Upgrade, , close"}},
		{"GET http://example.com HTTP/1.1\r\nHost: y\r\n\r\n", "GET", "/", "example.com", 1, false, []string{"Host=y"}},
		{"GET HTTP://h?q HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "/", "h", 1, false, []string{"Host=h"}},
		{"GET https://h//x?y HTTP/1.1\r\nHost: h\r\n\r\n", "GET", "//x", "h", 1, false, []string{"Host=h"}},
		{"\r\nGET / HTTP/1.1\r\nHost:x\r\nX-A: \t spaced \t\r\nX:\r\n\r\nGET /next", "GET", "/", "x", 1, false, []string{"Host=x", "X-A=spaced", "X="}},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "POST", "/", "x", 1, false, []string{"Host=x", "Content-Length=0"}},
	} {
		var r request
		used, err := parse([]byte(tc.req), serverLimits, &r)
		if err != nil || used == 0 {
			t.Errorf("%q: %d, %v; want a request", tc.req, used, err)
			continue
		}
		var fields []string
		for _, f := range r.fields {
			fields = append(fields, string(f.name)+"="+string(f.value))
		}
		got := fmt.Sprintf("%s %s host %q 1.%d close %v %q", r.method, r.path, r.host, r.minor, r.close, fields)
		want := fmt.Sprintf("%s %s host %q 1.%d close %v %q", tc.method, tc.path, tc.host, tc.minor, tc.close, tc.fields)
		if got != want {
			t.Errorf("%q:\n got %s\nwant %s", tc.req, got, want)
		}
		if end := strings.Index(tc.req, "\r\n\r\n") + 4; used != end {
			t.Errorf("%q: took %d bytes, want %d", tc.req, used, end)
		}
		// Half of it is not a request yet; then all of it, into the same
		// request again, is the same request.
		if used, err := parse([]byte(tc.req[:len(tc.req)/2]), serverLimits, &r); used != 0 || err != nil {
			t.Errorf("%q, half of it: %d, %v; want 0 and no error", tc.req, used, err)
		}
		if again, err := parse([]byte(tc.req), serverLimits, &r); again != used || err != nil || len(r.fields) != len(tc.fields) {
			t.Errorf("%q again: %d, %v, %d fields", tc.req, again, err, len(r.fields))
		}
	}
}

// benchRequests are wrk's request, as make bench-http sends it, and a
// browser's, with the fields Firefox sends.
var benchRequests = []struct{ name, req string }{
	{"wrk", "GET /1k.bin HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"},
	{"browser", "GET /20-server.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
		"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n" +
		"Connection: keep-alive\r\nUpgrade-Insecure-Requests: 1\r\n" +
		"Sec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\n\r\n"},
}

// BenchmarkParse: go test ./code/20-server -run '^$' -bench Parse -benchmem
func BenchmarkParse(b *testing.B) {
	for _, tc := range benchRequests {
		b.Run(tc.name, func(b *testing.B) {
			buf, r := []byte(tc.req), new(request)
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if used, err := parse(buf, serverLimits, r); used != len(buf) || err != nil {
					b.Fatal(used, err)
				}
			}
		})
	}
}

// TestNoAllocation: a loop of the server's, made as run makes it, with a
// client on loopback. Once the file is in the cache and the loop's
// buffers are in its pool, a keep-alive GET, or two pipelined in one
// write, costs no allocation from the client's write to its read of the
// last byte: read, parse, the cache, the head, writev, the deadlines.
// (Not parallel: testing.AllocsPerRun counts the whole process's.)
func TestNoAllocation(t *testing.T) {
	booktest.CheckFDs(t)
	n := newNarrator(io.Discard, true)
	cfg := config{quiet: true, backlog: 16, bufsize: 16384, loops: 1, reads: 16,
		idle: time.Minute, header: time.Minute, write: time.Minute, pause: time.Second, lim: serverLimits}
	root, err := openRoot(n, site(t))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFD(n, root)
	l, err := newLoop(n, io.Discard, io.Discard, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}, cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cfd)
	if err := unix.Connect(cfd, &unix.SockaddrInet4{Port: int(l.port), Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := l.accept(l.lfds[0]); err != nil || len(l.conns) != 1 {
		t.Fatalf("accept: %v, %d clients", err, len(l.conns))
	}
	var c *conn
	for _, only := range l.conns {
		c = only
	}
	// Nagle's algorithm would hold a pipelined second answer back until
	// the client's delayed ACK (up to 40 ms): this test counts
	// allocations, not waits.
	if err := unix.SetsockoptInt(c.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		t.Fatal(err)
	}
	one := []byte("GET /1k.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
	in := make([]byte, 64<<10)
	// ready waits (10 s at most) until fd is readable, as epoll_wait would.
	ready := func(fd int) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if k, err := unix.Poll(pfd, int(wait/time.Millisecond)); k != 1 {
			t.Fatalf("poll: %d, %v", k, err)
		}
	}
	// exchange sends req, has the loop step as it would when the request
	// comes, and reads until count answers of the 1 KiB file are whole.
	exchange := func(req []byte, count int) {
		if _, err := unix.Write(cfd, req); err != nil {
			t.Fatal(err)
		}
		ready(c.fd)
		l.step(c)
		// An answer is its head, up to the empty line, and 1,024 bytes.
		for got := 0; got < count*(bytes.Index(in[:got], []byte("\r\n\r\n"))+4+1024); {
			ready(cfd)
			k, err := unix.Read(cfd, in[got:])
			if k <= 0 {
				t.Fatalf("read: %d, %v", k, err)
			}
			got += k
		}
	}
	two := append(append([]byte{}, one...), one...)
	exchange(two, 2) // the file into the cache, the buffers into the pool
	if !bytes.HasPrefix(in, []byte("HTTP/1.1 200 OK\r\n")) {
		t.Fatalf("the answer to GET /1k.bin: %q", in[:200])
	}
	for _, tc := range []struct {
		name  string
		req   []byte
		count int
	}{{"keep-alive", one, 1}, {"pipelined", two, 2}} {
		if a := testing.AllocsPerRun(1000, func() { exchange(tc.req, tc.count) }); a != 0 {
			t.Errorf("%s: %v allocations per exchange, want 0", tc.name, a)
		}
	}
}
