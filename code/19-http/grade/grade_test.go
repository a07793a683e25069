//go:build grade && linux

// The graders of chapter 19's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names) on loopback,
// and talks HTTP to it with raw bytes on sockets of its own, one event
// after another: where the grader must know that the server has read
// something before it sends more, it waits for the server's narration of
// that read. Every wait is bounded (5 s for an answer).
//
//	go run ./tools/grade 19
//	go run ./tools/grade -program DIR 19
//
// Exercise 3 is checked by hand: it has no grader.
package grade

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// wait bounds every read and connect of the graders.
const wait = 5 * time.Second

// client is one connection of the grader's, with its reader.
type client struct {
	name string
	c    net.Conn
	r    *textproto.Reader
	srv  *booktest.Proc
}

func connect(t *testing.T, name string, srv *booktest.Proc) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Addr(), wait)
	if err != nil {
		t.Fatalf("client %s could not connect to %s: %v", name, srv.Addr(), err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{name, c, textproto.NewReader(bufio.NewReader(c)), srv}
}

func (c *client) send(t *testing.T, s string) {
	t.Helper()
	if _, err := c.c.Write([]byte(s)); err != nil {
		t.Fatalf("client %s: write: %v", c.name, err)
	}
}

// response is what the grader reads of an answer.
type response struct {
	status int
	header textproto.MIMEHeader
	body   string
}

// answer reads one response: status line, fields, and a body of
// Content-Length bytes (none for 1xx). want says what was expected, for
// the message if nothing comes.
func (c *client) answer(t *testing.T, want string) response {
	t.Helper()
	c.c.SetReadDeadline(time.Now().Add(wait))
	line, err := c.r.ReadLine()
	if err != nil {
		t.Fatalf("client %s: no answer within %v (%v); want %s; the server printed:\n%s", c.name, wait, err, want, c.srv.Output())
	}
	proto, rest, _ := strings.Cut(line, " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil {
		t.Fatalf("client %s: %q is not a status line", c.name, line)
	}
	h, err := c.r.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("client %s: the fields after %q: %v", c.name, line, err)
	}
	r := response{status: status, header: h}
	if status >= 200 {
		n, _ := strconv.Atoi(h.Get("Content-Length"))
		body := make([]byte, n)
		if _, err := io.ReadFull(c.r.R, body); err != nil {
			t.Fatalf("client %s: the body of %q: %v", c.name, line, err)
		}
		r.body = string(body)
	}
	return r
}

// closed fails unless the server closes the connection now: end of file
// (or a reset), rather than more bytes or nothing within the wait.
func (c *client) closed(t *testing.T, after string) {
	t.Helper()
	c.c.SetReadDeadline(time.Now().Add(wait))
	b, err := c.r.R.ReadByte()
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() || !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("client %s: after %s, want the connection closed; got byte %q, %v", c.name, after, b, err)
	}
}

func post(body string, fields ...string) string {
	return fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n%s\r\n%s", len(body), strings.Join(fields, ""), body)
}

const get = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"

// TestExercise1Continue: a request with Expect: 100-continue whose body
// has not come is told "100 Continue", once, before the final answer; a
// request without it is not, nor is an HTTP/1.0 request, which knows no
// 1xx answer.
func TestExercise1Continue(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")
	a := connect(t, "A", srv)
	a.send(t, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n")
	if r := a.answer(t, "100 Continue before the body is sent"); r.status != 100 {
		t.Fatalf("client A sent a head with Expect: 100-continue and Content-Length: 10, and no body: got %d, want 100 Continue", r.status)
	}
	a.send(t, "hello")
	srv.WaitFor(`"hello"`) // the server has read half the body
	a.send(t, "world")
	if r := a.answer(t, "the echo of the body"); r.status != 200 || r.body != "helloworld" {
		t.Fatalf("client A, after 100 Continue, sent its body in two writes: got %d %q, want 200 \"helloworld\" (one 100 Continue per request); the server printed:\n%s", r.status, r.body, srv.Output())
	}
	a.send(t, post("no expectation"))
	if r := a.answer(t, "the echo of the body"); r.status != 200 || r.body != "no expectation" {
		t.Fatalf("client A, a POST without Expect: got %d %q, want 200 and its body", r.status, r.body)
	}
	a.send(t, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	if r := a.answer(t, "100 Continue for the second request too"); r.status != 100 {
		t.Fatalf("client A, a second request with Expect on the same connection: got %d, want 100 Continue", r.status)
	}
	a.send(t, "more")
	if r := a.answer(t, "the echo of the body"); r.status != 200 || r.body != "more" {
		t.Fatalf("client A, the second body: got %d %q, want 200 \"more\"", r.status, r.body)
	}

	b := connect(t, "B", srv)
	b.send(t, "POST /echo HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
	srv.WaitFor(`"POST /echo HTTP/1.0`) // the server has read the head
	b.send(t, "ok")
	if r := b.answer(t, "200 and the body"); r.status != 200 || r.body != "ok" {
		t.Fatalf("client B, HTTP/1.0 with Expect: 100-continue: got %d %q, want 200 \"ok\" and no 100 (an HTTP/1.0 client knows no 1xx)", r.status, r.body)
	}
	srv.Interrupt()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d after Ctrl-C, want 0; the server printed:\n%s", code, srv.Output())
	}
}

// TestExercise2RequestLimit: with -requests 3, a connection is answered
// three requests, the third with Connection: close, and is then closed,
// whether the requests come one by one or all in one write; each
// connection has its own count. Without the flag there is no limit.
func TestExercise2RequestLimit(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server", "-q", "-requests", "3")
	for _, name := range []string{"A", "B"} { // B: the count is per connection
		c := connect(t, name, srv)
		for i := 1; i <= 3; i++ {
			c.send(t, get)
			r := c.answer(t, "200")
			closing := strings.EqualFold(r.header.Get("Connection"), "close")
			if r.status != 200 || closing != (i == 3) {
				t.Fatalf("client %s, request %d of 3 one by one: status %d, Connection %q; want 200, and Connection: close on the third only", name, i, r.status, r.header.Get("Connection"))
			}
		}
		c.closed(t, "its third answer")
	}
	p := connect(t, "P", srv)
	p.send(t, strings.Repeat(get, 5))
	for i := 1; i <= 3; i++ {
		r := p.answer(t, "three answers, then end of file")
		if closing := strings.EqualFold(r.header.Get("Connection"), "close"); r.status != 200 || closing != (i == 3) {
			t.Fatalf("client P, five requests in one write, answer %d: status %d, Connection %q; want 200, and Connection: close on the third only", i, r.status, r.header.Get("Connection"))
		}
	}
	p.closed(t, "three answers to five pipelined requests")
	srv.Interrupt()

	srv = s.Start("server", "-q")
	u := connect(t, "U", srv)
	u.send(t, strings.Repeat(get, 5))
	for i := 1; i <= 5; i++ {
		if r := u.answer(t, "five answers"); r.status != 200 || r.header.Get("Connection") != "" {
			t.Fatalf("without -requests, five pipelined requests, answer %d: status %d, Connection %q; want 200, kept open", i, r.status, r.header.Get("Connection"))
		}
	}
	srv.Interrupt()
}
