//go:build linux

// The parser's second half: the body, framed by Content-Length or by the
// chunked coding (RFC 9112 6 and 7).

package main

import (
	"bytes"
	"strconv"
)

// region body
// body reads the body the framing says: chunked, Content-Length bytes, or
// none.
func (p *parser) body(r *request) error {
	switch {
	case r.chunked:
		return p.chunked(r)
	case r.length < 0:
		return nil
	case r.length > int64(p.lim.body):
		return bad(413, "body of %d bytes, more than %d", r.length, p.lim.body)
	case int64(len(p.buf)-p.off) < r.length:
		return errMore
	}
	r.body = p.buf[p.off : p.off+int(r.length)]
	p.off += int(r.length)
	return nil
}

// chunked undoes the chunked coding: chunks of a hexadecimal size, a
// last chunk of size 0, trailers, an empty line. The chunks of a request
// split over many reads are not copied until all have come.
func (p *parser) chunked(r *request) error {
	var body []byte
	for {
		line, err := p.line(p.lim.line)
		if err == errTooLong {
			return bad(400, "chunk size line longer than %d bytes", p.lim.line)
		} else if err != nil {
			return err
		}
		hex, _, ext := bytes.Cut(line, []byte(";")) // extensions are ignored
		if ext {
			hex = bytes.TrimRight(hex, " \t") // whitespace only before an extension
		}
		size, err := strconv.ParseUint(string(hex), 16, 63)
		if err != nil {
			return bad(400, "invalid chunk size %q", hex)
		}
		if size == 0 {
			var trailers []fieldLine // read, and dropped: this server wants none
			if err := p.fields(&trailers); err != nil {
				return err
			}
			r.body = body
			return nil
		}
		if uint64(len(body))+size > uint64(p.lim.body) {
			return bad(413, "chunked body of more than %d bytes", p.lim.body)
		}
		if uint64(len(p.buf)-p.off) < size+2 {
			return errMore
		}
		end := p.off + int(size)
		if !bytes.HasPrefix(p.buf[end:], []byte("\r\n")) {
			return bad(400, "chunk data not followed by CRLF")
		}
		body = append(body, p.buf[p.off:end]...)
		p.off = end + 2
	}
}

// endregion body
