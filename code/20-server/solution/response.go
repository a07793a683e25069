//go:build linux

// Writing responses: a file's, with its conditional (304) and range (206,
// 416) forms, and the short ones for errors; and the one line of
// narration for each request.

package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// httpTime is the form of dates in HTTP fields (RFC 9110 5.6.7).
const httpTime = "Mon, 02 Jan 2006 15:04:05 GMT"

// reasons are the reason phrases of the statuses this server sends.
var reasons = map[int]string{
	200: "OK", 206: "Partial Content", 301: "Moved Permanently", 304: "Not Modified",
	400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
	413: "Content Too Large", 414: "URI Too Long", 416: "Range Not Satisfiable",
	431: "Request Header Fields Too Large", 500: "Internal Server Error",
	501: "Not Implemented", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
}

// region head
// head appends a response's status line and header fields to out, with
// append and strconv only: no fmt, no allocation. length < 0 sends no
// Content-Length (a 304 has no body to measure). fields are more fields,
// name then value.
func (l *loop) head(out []byte, r *request, status int, ctype string, length int64, fields ...string) []byte {
	if out == nil {
		out = l.take() // a buffer from the pool: flush gives it back once it is written
	}
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(status), 10)
	out = append(append(append(out, ' '), reasons[status]...), "\r\nDate: "...)
	out = append(append(out, l.now()...), "\r\n"...)
	if ctype != "" {
		out = append(append(append(out, "Content-Type: "...), ctype...), "\r\n"...)
	}
	if length >= 0 {
		out = strconv.AppendInt(append(out, "Content-Length: "...), length, 10)
		out = append(out, "\r\n"...)
	}
	switch {
	case r == nil || r.close:
		out = append(out, "Connection: close\r\n"...)
	case r.minor == 0: // HTTP/1.0 closes unless told otherwise: tell it
		out = append(out, "Connection: keep-alive\r\n"...)
	}
	for i := 0; i+1 < len(fields); i += 2 {
		out = append(append(append(append(out, fields[i]...), ": "...), fields[i+1]...), "\r\n"...)
	}
	return append(out, "\r\n"...)
}

// endregion head

// now is the Date field's value, formatted once a second, not once per
// response.
func (l *loop) now() []byte {
	t := time.Now()
	if s := t.Unix(); s != l.dateSec || l.date == nil {
		l.date, l.dateSec = t.UTC().AppendFormat(l.date[:0], httpTime), s
	}
	return l.date
}

// respond appends a short answer with its body to out, and narrates it.
// r is nil for a request the parser refused.
func (l *loop) respond(out []byte, r *request, status int, body []byte, ctype string, fields ...string) []byte {
	out = l.head(out, r, status, ctype, int64(len(body)), fields...)
	if r != nil && string(r.method) == "HEAD" {
		body = nil
	}
	l.told(r, status, int64(len(body)))
	return append(out, body...)
}

// region serveFile
// serveFile answers GET or HEAD for a file. If-None-Match (the tag) or
// else If-Modified-Since (the time) that still hold: 304, no body. A
// Range of one span: 206 and those bytes, or 416 if it starts past the
// end. The body follows the head in c.body (cached bytes, one writev
// with the head) or c.ffd (sendfile). From the cache, no allocation:
// l.cache[string(r.path)] copies nothing, the head goes in a pooled buffer.
func (l *loop) serveFile(c *conn, r *request) {
	const text = "text/plain; charset=utf-8"
	now := time.Now()
	e, fd, status := l.cache[string(r.path)], -1, 0
	if e == nil || now.Sub(e.checked) >= revalid {
		e, fd, status = l.lookup(string(r.path), now) // look at the file
	}
	switch status {
	case 0:
	case 301:
		c.out = l.respond(c.out, r, 301, []byte("moved\n"), text, "Location", string(r.path)+"/")
		return
	default:
		c.out = l.respond(c.out, r, status, []byte(strings.ToLower(reasons[status])+"\n"), text)
		return
	}
	// A client that takes gzip gets file.gz, if there is one, as the
	// file in that coding: the same type, Content-Encoding: gzip, its own
	// tag. Vary tells caches that the answer depends on Accept-Encoding.
	encoding := []string{"Vary", "Accept-Encoding"}
	if bytes.Contains(field(r, "accept-encoding"), []byte("gzip")) {
		if z, zfd, st := l.lookup(string(r.path)+".gz", now); st == 0 {
			l.closeFile(fd)
			zc := *z
			zc.ctype = e.ctype
			e, fd, encoding = &zc, zfd, append(encoding, "Content-Encoding", "gzip")
		}
	}
	if notModified(r, e) {
		c.out = l.head(c.out, r, 304, "", -1, "ETag", e.etag, "Last-Modified", e.lastMod)
		l.told(r, 304, 0)
		l.closeFile(fd)
		return
	}
	status, from, to := 200, int64(0), e.size // the bytes [from, to)
	if rng := field(r, "range"); len(rng) > 0 && (len(field(r, "if-range")) == 0 || string(field(r, "if-range")) == e.etag) {
		var ok bool
		if from, to, ok = span(string(rng), e.size); !ok {
			from, to = 0, e.size // a form this server does not take: the whole file
		} else if from >= to {
			c.out = l.head(c.out, r, 416, text, 0, "Content-Range", "bytes */"+strconv.FormatInt(e.size, 10))
			l.told(r, 416, 0)
			l.closeFile(fd)
			return
		} else {
			status = 206
		}
	}
	fields := append([]string{"ETag", e.etag, "Last-Modified", e.lastMod, "Accept-Ranges", "bytes"}, encoding...)
	if status == 206 {
		fields = append(fields, "Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to-1, e.size))
	}
	c.out = l.head(c.out, r, status, e.ctype, to-from, fields...)
	if string(r.method) == "HEAD" {
		from = to
	}
	l.told(r, status, to-from)
	switch {
	case fd < 0:
		c.body = e.body[from:to]
	case from < to:
		c.ffd, c.off, c.end = fd, from, to
	default:
		l.closeFile(fd)
	}
}

// endregion serveFile

func (l *loop) closeFile(fd int) {
	if fd >= 0 {
		closeFD(l.n, fd)
	}
}

// field is the value of the request's header field name (lower case):
// nil if there is none, empty if its value is.
func field(r *request, name string) []byte {
	for _, f := range r.fields {
		if isWord(f.name, name) {
			return f.value
		}
	}
	return nil
}

// notModified reports whether the client's copy is current. A tag in
// If-None-Match is compared weakly (W/ aside), and when the field is
// there the time is not looked at (RFC 9110 13.2.2).
func notModified(r *request, e *entry) bool {
	if inm := field(r, "if-none-match"); len(inm) > 0 {
		for tag := range bytes.SplitSeq(inm, []byte(",")) {
			tag = bytes.TrimPrefix(bytes.TrimSpace(tag), []byte("W/"))
			if string(tag) == "*" || string(tag) == e.etag {
				return true
			}
		}
		return false
	}
	ims := field(r, "if-modified-since")
	if len(ims) == 0 {
		return false // and no time.Parse of "", whose error is an allocation
	}
	t, err := time.Parse(httpTime, string(ims))
	return err == nil && !e.mtime.Truncate(time.Second).After(t)
}

// region span
// span reads a Range of one span, "bytes=FROM-TO", "bytes=FROM-" or
// "bytes=-LAST" (the last LAST bytes), and returns it as [from, to),
// clipped to the file. ok is false for anything else (several spans,
// another unit, a malformed one): the field is then ignored, as RFC 9110
// 14.2 allows. from >= to is a span that starts past the end: 416.
func span(v string, size int64) (from, to int64, ok bool) {
	v, ok = strings.CutPrefix(v, "bytes=")
	a, b, dash := strings.Cut(v, "-")
	if !ok || !dash || strings.Contains(b, ",") {
		return 0, 0, false
	}
	num := func(s string) (int64, bool) {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil && s[0] != '+' && n >= 0
	}
	switch {
	case a == "" && b != "":
		last, ok := num(b)
		if !ok || last == 0 {
			return 0, 0, ok // bytes=-0 is a span of nothing: 416
		}
		return max(0, size-last), size, true
	case a == "":
		return 0, 0, false
	}
	from, ok = num(a)
	if !ok {
		return 0, 0, false
	}
	to = size
	if b != "" {
		last, ok := num(b)
		if !ok || last < from {
			return 0, 0, false
		}
		to = min(size, last+1)
	}
	if from >= size {
		return 1, 0, true
	}
	return from, to, true
}

// endregion span

// told narrates one answer: "GET / HTTP/1.1 -> 200, 13 bytes", the bytes
// being the body's.
func (l *loop) told(r *request, status int, size int64) {
	if l.cfg.quiet && !l.cfg.log {
		return
	}
	what := "refused request"
	if r != nil {
		what = fmt.Sprintf("%s %s HTTP/1.%d", r.method, r.target, r.minor)
	}
	l.n.mu.Lock() // one line at a time, with the other loops' narration
	defer l.n.mu.Unlock()
	if l.cfg.log {
		// The access log: who, what, the status, and the bytes of body
		// sent (0 for HEAD and 304, the span's for 206).
		fmt.Fprintf(l.w, "%s %q %d %d\n", l.peer, what, status, size)
	}
	if !l.cfg.quiet {
		fmt.Fprintf(l.w, "%s -> %d, %d bytes\n", what, status, size)
	}
}
