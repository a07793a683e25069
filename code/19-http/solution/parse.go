//go:build linux

// The HTTP/1.1 request parser (RFC 9112): the request line, the header
// section, the empty line; the body is in body.go. It keeps no state between
// calls: each parses the buffer from its start, so a request split over many
// reads is parsed again each time more comes. The limits bound that cost.

package main

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// limits bound what one request may make the server hold and scan.
type limits struct {
	line   int // the request line, CRLF not counted: over it, 414
	header int // the header section (and the trailers), CRLFs counted: 431
	fields int // the field lines of the header section: 431
	body   int // the body, after the chunked coding is undone: 413
}

// request is what the server needs of a request. Its slices point into
// the buffer parse was given.
type request struct {
	method, target string
	path, host     string // the target's path; the authority it names
	minor          int    // HTTP/1.minor
	fields         [][2]string
	length         int64 // Content-Length; -1: none
	chunked        bool  // the body is in the chunked coding
	body           []byte
	close          bool // the connection ends after the answer to this one
}

// badRequest is a request the server answers with status, then closes.
type badRequest struct {
	status int
	reason string
}

func (e *badRequest) Error() string { return fmt.Sprintf("%d %s", e.status, e.reason) }

func bad(status int, format string, args ...any) error {
	return &badRequest{status, fmt.Sprintf(format, args...)}
}

// errMore says that buf holds the start of a request, not all of it.
var errMore = errors.New("the request is not all here")

// region parse
// parse reads the request at the start of buf. It returns the request and
// the number of bytes it took; nil and 0 while the request is incomplete;
// a *badRequest when the bytes are not a request the server will answer.
func parse(buf []byte, lim limits) (*request, int, error) {
	p := parser{buf: buf, lim: lim}
	req, err := p.request()
	switch {
	case err == errMore:
		return req, 0, nil // req: the head, if it is all here (for 100 Continue)
	case err != nil:
		return nil, 0, err
	}
	return req, p.off, nil
}

// parser is one pass over a buffer: off is how far it has read.
type parser struct {
	buf []byte
	off int
	lim limits
}

// line returns the next line without its CRLF. A line of more than max
// bytes is the error tooLong, as soon as that many have come: a client
// cannot make the server wait for, and hold, an endless line.
func (p *parser) line(max int, tooLong error) ([]byte, error) {
	rest := p.buf[p.off:]
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		if len(bytes.TrimSuffix(rest, []byte("\r"))) > max {
			return nil, tooLong
		}
		return nil, errMore
	}
	if i == 0 || rest[i-1] != '\r' {
		return nil, bad(400, "bare LF: a line must end with CRLF")
	}
	line := rest[:i-1]
	if len(line) > max {
		return nil, tooLong
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
func (p *parser) request() (*request, error) {
	// A server should ignore empty lines before a request (RFC 9112 2.2);
	// they count against the request line's limit.
	for bytes.HasPrefix(p.buf[p.off:], []byte("\r\n")) && p.off < p.lim.line {
		p.off += 2
	}
	line, err := p.line(p.lim.line-p.off, bad(414, "request line longer than %d bytes", p.lim.line))
	if err != nil {
		return nil, err
	}
	parts := strings.Split(string(line), " ")
	if len(parts) != 3 || !isToken(parts[0]) || parts[1] == "" {
		return nil, bad(400, "a request line is METHOD SP TARGET SP VERSION")
	}
	req := &request{method: parts[0], target: parts[1]}
	v := parts[2]
	if len(v) != 8 || v[:5] != "HTTP/" || !isDigit(v[5]) || v[6] != '.' || !isDigit(v[7]) {
		return nil, bad(400, "malformed version %q", v)
	}
	if v[5] != '1' {
		return nil, bad(505, "version %s not supported", v)
	}
	// HTTP/1.2 is read as the highest 1.x this server knows (RFC 9110 2.5).
	req.minor = min(int(v[7]-'0'), 1)
	if !slices.Contains([]string{"GET", "HEAD", "POST"}, req.method) {
		return nil, bad(501, "method %s not implemented", req.method)
	}
	if err := req.parseTarget(); err != nil {
		return nil, err
	}
	if err := p.fields(&req.fields); err != nil {
		return nil, err
	}
	if err := req.semantics(); err != nil {
		return nil, err
	}
	return req, p.body(req)
}

// endregion requestline

// parseTarget splits the target into its path and, in the absolute form
// (http://host/path, which a server must accept: RFC 9112 3.2.2), its
// authority. The asterisk form is OPTIONS's only: not implemented.
func (r *request) parseTarget() error {
	if strings.IndexFunc(r.target, func(c rune) bool { return c <= ' ' || c >= 0x7f }) >= 0 {
		return bad(400, "a control, a space or a byte over 0x7e in the target")
	}
	r.path = r.target
	if scheme, rest, ok := strings.Cut(r.target, "://"); ok && (strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")) {
		end := strings.IndexAny(rest, "/?")
		if end < 0 {
			end = len(rest)
		}
		r.host, r.path = rest[:end], "/"+strings.TrimPrefix(rest[end:], "/")
	} else if !strings.HasPrefix(r.target, "/") {
		return bad(400, "target %q is not a path", r.target)
	}
	if i := strings.IndexByte(r.path, '?'); i >= 0 {
		r.path = r.path[:i]
	}
	return nil
}

// region fields
// fields parses field lines up to the empty line that ends them: the
// header section, or the trailers after a chunked body.
func (p *parser) fields(into *[][2]string) error {
	left := p.lim.header
	tooLarge := bad(431, "header section larger than %d bytes", p.lim.header)
	for {
		line, err := p.line(left-2, tooLarge)
		if err != nil {
			return err
		}
		left -= len(line) + 2
		if len(line) == 0 {
			return nil
		}
		if len(*into) == p.lim.fields {
			return bad(431, "more than %d header fields", p.lim.fields)
		}
		if line[0] == ' ' || line[0] == '\t' {
			return bad(400, "obsolete line folding")
		}
		name, value, ok := strings.Cut(string(line), ":")
		if !ok || name == "" {
			return bad(400, "a field line without a name and a colon")
		}
		if n := strings.TrimRight(name, " \t"); n != name && isToken(n) {
			return bad(400, "whitespace between the field name %q and the colon", n)
		}
		if !isToken(name) {
			return bad(400, "invalid field name %q", name)
		}
		value = strings.Trim(value, " \t")
		for i := 0; i < len(value); i++ {
			if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
				return bad(400, "byte %#x in the value of %s", c, name)
			}
		}
		*into = append(*into, [2]string{name, value})
	}
}

// endregion fields

// region semantics
// semantics checks what the fields say about the message as a whole: Host,
// the framing, and whether the connection stays open.
func (r *request) semantics() error {
	var hosts, lengths, codings, conn []string
	for _, f := range r.fields {
		switch strings.ToLower(f[0]) {
		case "host":
			hosts = append(hosts, f[1])
		case "content-length":
			lengths = append(lengths, f[1])
		case "transfer-encoding":
			codings = append(codings, elements(f[1])...)
		case "connection":
			conn = append(conn, elements(f[1])...)
		}
	}
	switch {
	case len(hosts) > 1:
		return bad(400, "more than one Host")
	case len(hosts) == 0 && r.minor == 1:
		return bad(400, "no Host in an HTTP/1.1 request")
	case len(hosts) == 1 && strings.Trim(hosts[0], hostChars) != "":
		return bad(400, "invalid Host %q", hosts[0])
	case len(hosts) == 1 && r.host == "":
		r.host = hosts[0]
	}
	// Two framings in one message is how requests are smuggled: a proxy
	// in front reads one, the server behind it the other (RFC 9112 6.3).
	switch {
	case len(lengths) > 1:
		return bad(400, "more than one Content-Length")
	case len(lengths) == 1 && len(codings) > 0:
		return bad(400, "both Transfer-Encoding and Content-Length")
	case len(codings) > 0 && r.minor == 0:
		return bad(400, "Transfer-Encoding in an HTTP/1.0 request")
	case len(codings) > 0 && codings[len(codings)-1] != "chunked":
		return bad(400, "chunked is not the final transfer coding")
	case slices.Contains(codings[:max(len(codings)-1, 0)], "chunked"):
		return bad(400, "chunked applied twice")
	case len(codings) > 1:
		return bad(501, "transfer coding %s not implemented", codings[0])
	}
	r.chunked, r.length = len(codings) > 0, -1
	if len(lengths) == 1 {
		n, err := strconv.ParseUint(lengths[0], 10, 63) // digits only: no sign, no list
		if err != nil {
			return bad(400, "invalid Content-Length %q", lengths[0])
		}
		r.length = int64(n)
	}
	closing, keep := slices.Contains(conn, "close"), slices.Contains(conn, "keep-alive")
	r.close = closing || r.minor == 0 && !keep
	return nil
}

// endregion semantics

// elements splits a comma-separated field value into its elements, without
// the empty ones (RFC 9110 5.6.1), lowering tokens only: they are ASCII, and
// strings.ToLower makes a Kelvin sign "k", so "chun\u212aed" would be chunked.
func elements(v string) []string {
	var out []string
	for e := range strings.SplitSeq(v, ",") {
		if e = strings.Trim(e, " \t"); isToken(e) {
			out = append(out, strings.ToLower(e))
		} else if e != "" {
			out = append(out, e)
		}
	}
	return out
}

// hostChars: a Host value's bytes (RFC 3986's reg-name, IP-literal and port).
const hostChars = letters + "0123456789-._~!$&'()*+,;=:[]%"

// isToken reports whether s is a token: the characters of a method or a
// field name (RFC 9110 5.6.2).
func isToken(s string) bool {
	return s != "" && strings.Trim(s, "!#$%&'*+-.^_`|~0123456789"+letters) == ""
}

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
