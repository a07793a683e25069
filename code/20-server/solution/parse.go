//go:build linux

// The HTTP/1.1 request parser (RFC 9112), chapter 19's with every rule
// kept, made to allocate nothing for a request it takes: the request line
// and the target here, the header section in fields.go, the body in
// body.go. Each call parses the buffer from its start; limits bound that.

package main

import (
	"bytes"
	"errors"
	"fmt"
)

// limits bound what one request may make the server hold and scan.
type limits struct {
	line   int // the request line, CRLF not counted: over it, 414
	header int // the header section (and the trailers), CRLFs counted: 431
	fields int // the field lines of the header section: 431
	body   int // the body, after the chunked coding is undone: 413
}

// region request
// request is what the server needs of a request. Its slices point into
// the buffer parse was given: they are good until that buffer changes.
type request struct {
	method, target []byte
	path, host     []byte // the target's path; the authority it names
	minor          int    // HTTP/1.minor
	fields         []fieldLine
	length         int64 // Content-Length; -1: none
	chunked        bool  // the body is in the chunked coding
	body           []byte
	close          bool // the connection ends after the answer to this one
}

// fieldLine is one field of the header section, name and value.
type fieldLine struct{ name, value []byte }

// endregion request

// badRequest is a request the server answers with status, then closes.
type badRequest struct {
	status int
	reason string
}

func (e *badRequest) Error() string { return fmt.Sprintf("%d %s", e.status, e.reason) }

// bad makes a refused request's error: on that path only, as it allocates.
func bad(status int, format string, args ...any) error {
	return &badRequest{status, fmt.Sprintf(format, args...)}
}

var (
	errMore    = errors.New("the request is not all here")
	errTooLong = errors.New("the line is longer than its limit") // which limit, the caller says
)

// region parse
// parse reads the request at the start of buf into r, reset (its array of
// fields kept), and returns the bytes it took: 0 while it is incomplete;
// a *badRequest if it is not a request the server will answer.
func parse(buf []byte, lim limits, r *request) (int, error) {
	*r = request{fields: r.fields[:0]}
	p := parser{buf: buf, lim: lim}
	switch err := p.request(r); {
	case err == errMore:
		return 0, nil
	case err != nil:
		return 0, err
	}
	return p.off, nil
}

// parser is one pass over a buffer: off is how far it has read.
type parser struct {
	buf []byte
	off int
	lim limits
}

// line returns the next line without its CRLF. A line of more than max
// bytes is errTooLong, as soon as that many have come: a client cannot
// make the server wait for, and hold, an endless line.
func (p *parser) line(max int) ([]byte, error) {
	rest := p.buf[p.off:]
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		if len(bytes.TrimSuffix(rest, []byte("\r"))) > max {
			return nil, errTooLong
		}
		return nil, errMore
	}
	if i == 0 || rest[i-1] != '\r' {
		return nil, bad(400, "bare LF: a line must end with CRLF")
	}
	line := rest[:i-1]
	if len(line) > max {
		return nil, errTooLong
	}
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, bad(400, "bare CR in a line")
	}
	p.off += i + 1
	return line, nil
}

// endregion parse

// region requestline
// request parses a whole request: the request line, then the header
// section, then the body.
func (p *parser) request(r *request) error {
	// A server should ignore empty lines before a request (RFC 9112 2.2);
	// they count against the request line's limit.
	for bytes.HasPrefix(p.buf[p.off:], []byte("\r\n")) && p.off < p.lim.line {
		p.off += 2
	}
	line, err := p.line(p.lim.line - p.off)
	if err == errTooLong {
		return bad(414, "request line longer than %d bytes", p.lim.line)
	} else if err != nil {
		return err
	}
	// METHOD SP TARGET SP VERSION: exactly two spaces.
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := sp1 + 1 + bytes.IndexByte(line[sp1+1:], ' ')
	if sp1 < 0 || sp2 == sp1 || bytes.IndexByte(line[sp2+1:], ' ') >= 0 ||
		!isToken(line[:sp1]) || sp2 == sp1+1 {
		return bad(400, "a request line is METHOD SP TARGET SP VERSION")
	}
	r.method, r.target = line[:sp1], line[sp1+1:sp2]
	v := line[sp2+1:]
	if len(v) != 8 || string(v[:5]) != "HTTP/" || !isDigit(v[5]) || v[6] != '.' || !isDigit(v[7]) {
		return bad(400, "malformed version %q", v)
	}
	if v[5] != '1' {
		return bad(505, "version %s not supported", v)
	}
	// HTTP/1.2 is read as the highest 1.x this server knows (RFC 9110 2.5).
	r.minor = min(int(v[7]-'0'), 1)
	switch string(r.method) { // a comparison: string() makes no copy here
	case "GET", "HEAD", "POST":
	default:
		return bad(501, "method %s not implemented", r.method)
	}
	if err := r.parseTarget(); err != nil {
		return err
	}
	if err := p.fields(&r.fields); err != nil {
		return err
	}
	if err := r.semantics(); err != nil {
		return err
	}
	return p.body(r)
}

// endregion requestline

// parseTarget splits the target into its path and, in the absolute form
// (http://host/path: RFC 9112 3.2.2), its authority. The asterisk form is
// OPTIONS's only, and OPTIONS is not implemented.
func (r *request) parseTarget() error {
	for _, c := range r.target {
		if c <= ' ' || c >= 0x7f {
			return bad(400, "a control, a space or a byte over 0x7e in the target")
		}
	}
	r.path = r.target
	if i := bytes.Index(r.target, []byte("://")); i >= 0 && (isWord(r.target[:i], "http") || isWord(r.target[:i], "https")) {
		rest := r.target[i+3:]
		end := bytes.IndexAny(rest, "/?")
		if end < 0 {
			end = len(rest)
		}
		// "http://host" has the path "/": the one of "://" will do.
		r.host, r.path = rest[:end], r.target[i+1:i+2]
		if bytes.HasPrefix(rest[end:], []byte("/")) {
			r.path = rest[end:]
		}
	} else if !bytes.HasPrefix(r.target, []byte("/")) {
		return bad(400, "target %q is not a path", r.target)
	}
	if i := bytes.IndexByte(r.path, '?'); i >= 0 {
		r.path = r.path[:i]
	}
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
