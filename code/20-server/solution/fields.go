//go:build linux

// The parser's middle: the header section's field lines, and what they
// say about the request as a whole (RFC 9112 5 and 6, RFC 9110 5).

package main

import (
	"bytes"
	"strconv"
	"strings"
)

// region fields
// fields parses field lines up to the empty line that ends them: the
// header section, or the trailers after a chunked body. No copy: slices.
func (p *parser) fields(into *[]fieldLine) error {
	left := p.lim.header
	for {
		line, err := p.line(left - 2)
		if err == errTooLong {
			return bad(431, "header section larger than %d bytes", p.lim.header)
		} else if err != nil {
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
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 {
			return bad(400, "a field line without a name and a colon")
		}
		if n := bytes.TrimRight(name, " \t"); len(n) != len(name) && isToken(n) {
			return bad(400, "whitespace between the field name %q and the colon", n)
		}
		if !isToken(name) {
			return bad(400, "invalid field name %q", name)
		}
		value = bytes.Trim(value, " \t")
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return bad(400, "byte %#x in the value of %s", c, name)
			}
		}
		*into = append(*into, fieldLine{name, value})
	}
}

// endregion fields

// region semantics
// semantics checks what the fields say about the message as a whole: Host,
// the framing, and whether the connection stays open. It counts what
// chapter 19 collected in lists: Hosts, Content-Lengths, codings.
func (r *request) semantics() error {
	var hosts, lengths, codings, chunks int
	var host, length, first, last []byte
	var closing, keep bool
	for _, f := range r.fields {
		switch {
		case isWord(f.name, "host"):
			hosts, host = hosts+1, f.value
		case isWord(f.name, "content-length"):
			lengths, length = lengths+1, f.value
		case isWord(f.name, "transfer-encoding"): // a list (RFC 9110 5.6.1)
			for e := range bytes.SplitSeq(f.value, []byte(",")) {
				if e = bytes.Trim(e, " \t"); len(e) == 0 {
					continue // "a, , b" has two elements
				} else if codings++; codings == 1 {
					first = e
				}
				if last = e; isWord(e, "chunked") {
					chunks++
				}
			}
		case isWord(f.name, "connection"):
			for e := range bytes.SplitSeq(f.value, []byte(",")) {
				e = bytes.Trim(e, " \t")
				closing, keep = closing || isWord(e, "close"), keep || isWord(e, "keep-alive")
			}
		}
	}
	switch {
	case hosts > 1:
		return bad(400, "more than one Host")
	case hosts == 0 && r.minor == 1:
		return bad(400, "no Host in an HTTP/1.1 request")
	case hosts == 1 && !isHost(host):
		return bad(400, "invalid Host %q", host)
	case hosts == 1 && len(r.host) == 0:
		r.host = host
	}
	// Two framings in one message is how requests are smuggled: a proxy
	// in front reads one, the server behind it the other (RFC 9112 6.3).
	chunked := codings > 0 && isWord(last, "chunked")
	switch {
	case lengths > 1:
		return bad(400, "more than one Content-Length")
	case lengths == 1 && codings > 0:
		return bad(400, "both Transfer-Encoding and Content-Length")
	case codings > 0 && r.minor == 0:
		return bad(400, "Transfer-Encoding in an HTTP/1.0 request")
	case codings > 0 && !chunked:
		return bad(400, "chunked is not the final transfer coding")
	case chunks > 1:
		return bad(400, "chunked applied twice")
	case codings > 1:
		return bad(501, "transfer coding %s not implemented", bytes.ToLower(first))
	}
	r.chunked, r.length = chunked, -1
	if lengths == 1 {
		n, err := strconv.ParseUint(string(length), 10, 63) // digits only: no sign, no list
		if err != nil {
			return bad(400, "invalid Content-Length %q", length)
		}
		r.length = int64(n)
	}
	r.close = closing || r.minor == 0 && !keep
	return nil
}

// endregion semantics

// isWord reports whether b is word, in any case: field names, schemes and
// codings are compared so. word is lower case. Only ASCII letters fold:
// "chunKed" with a Kelvin sign is not chunked.
func isWord(b []byte, word string) bool {
	if len(b) != len(word) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != word[i] {
			return false
		}
	}
	return true
}

// isToken reports whether b is a token: the characters of a method or a
// field name (RFC 9110 5.6.2).
func isToken(b []byte) bool { return len(b) > 0 && only(b, "!#$%&'*+-.^_`|~") }

// isHost: a name or address, and a port (RFC 3986's reg-name, IP-literal, port).
func isHost(b []byte) bool { return only(b, "-._~!$&'()*+,;=:[]%") }

// only reports whether b holds letters, digits and punct only. Not with
// bytes.Trim: it builds its set on every call, most of this parser's time.
func only(b []byte, punct string) bool {
	for _, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c)) && strings.IndexByte(punct, c) < 0 {
			return false
		}
	}
	return true
}
