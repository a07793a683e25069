//go:build linux

// Writing responses: the status line, the header fields, the empty line,
// the body; and the one line of narration for each request.

package main

import (
	"fmt"
	"strconv"
	"time"
)

// page is what GET / answers.
const page = "Hello, HTTP!\n"

// reasons are the reason phrases of the statuses this server sends (RFC
// 9110 15). A client reads the number; the phrase is for people.
var reasons = map[int]string{
	200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
	413: "Content Too Large", 414: "URI Too Long", 431: "Request Header Fields Too Large",
	501: "Not Implemented", 505: "HTTP Version Not Supported",
}

// region respond
// respond appends a response to r to out, and narrates it. r is nil for a
// request the parser refused. fields are more header fields, name then
// value. The answer to HEAD has the fields GET's would have, with its
// Content-Length, and no body: nothing else tells the client where it ends.
func (l *loop) respond(out []byte, r *request, status int, body []byte, ctype string, fields ...string) []byte {
	out = fmt.Appendf(out, "HTTP/1.1 %d %s\r\n", status, reasons[status])
	fields = append(fields, "Content-Type", ctype, "Content-Length", strconv.Itoa(len(body)))
	switch {
	case r == nil || r.close:
		fields = append(fields, "Connection", "close")
	case r.minor == 0: // HTTP/1.0 closes unless told otherwise: tell it
		fields = append(fields, "Connection", "keep-alive")
	}
	// A server with a clock must say when it answered (RFC 9110 6.6.1).
	fields = append(fields, "Date", time.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT"))
	for i := 0; i+1 < len(fields); i += 2 {
		out = fmt.Appendf(out, "%s: %s\r\n", fields[i], fields[i+1])
	}
	out = append(out, "\r\n"...)
	if r != nil && r.method == "HEAD" {
		body = nil
	}
	l.told(r, status, len(body))
	return append(out, body...)
}

// endregion respond

// told narrates one answer: "GET / HTTP/1.1 -> 200, 13 bytes", the bytes
// being the body's.
func (l *loop) told(r *request, status, size int) {
	if l.cfg.quiet {
		return
	}
	what := "refused request"
	if r != nil {
		what = fmt.Sprintf("%s %s HTTP/1.%d", r.method, r.target, r.minor)
	}
	l.n.mu.Lock() // one line at a time, with the other loops' narration
	defer l.n.mu.Unlock()
	fmt.Fprintf(l.w, "%s -> %d, %d bytes\n", what, status, size)
}
