package main

import (
	"regexp"
	"slices"
	"strings"

	"github.com/yuin/goldmark/ast"
)

// checkMarkdown reports what goldmark would quietly leave out of a page:
// raw HTML (it prints <!-- raw HTML omitted -->) and a link whose URL is
// not http:, https:, mailto: or a page of the site (it empties
// javascript: and the like). Each at its line of the chapter.
func checkMarkdown(ch *Chapter, body []byte, doc ast.Node) Errors {
	var errs Errors
	reported := map[int]bool{} // raw HTML: one message a line
	ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		var dest []byte
		switch n := n.(type) {
		case *ast.HTMLBlock, *ast.RawHTML:
			pos := ch.pos(body, offsetOf(n))
			if !reported[pos.Line] {
				reported[pos.Line] = true
				errs.add(pos, "raw HTML is not allowed in a chapter (goldmark would drop it): write Markdown")
			}
			return ast.WalkSkipChildren, nil
		case *ast.Link:
			dest = n.Destination
		case *ast.Image:
			dest = n.Destination
		case *ast.AutoLink:
			dest = n.URL(body)
		default:
			return ast.WalkContinue, nil
		}
		if m := schemeRE.FindSubmatch(dest); m != nil && !slices.Contains([]string{"http", "https", "mailto"}, strings.ToLower(string(m[1]))) {
			errs.add(ch.pos(body, offsetOf(n)), "link to %q: a link goes to http:, https:, mailto: or a page of the site", dest)
		}
		return ast.WalkContinue, nil
	})
	return errs
}

// schemeRE is a URL's scheme (RFC 3986, section 3.1).
var schemeRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*):`)

// offsetOf is where in the source a node starts, as near as goldmark
// records it: a block's first line, an inline's own text, or else its
// first child's or its parent's.
func offsetOf(n ast.Node) int {
	switch n := n.(type) {
	case *ast.Text:
		return n.Segment.Start
	case *ast.RawHTML:
		if n.Segments.Len() > 0 {
			return n.Segments.At(0).Start
		}
	}
	if n.Type() == ast.TypeBlock && n.Lines().Len() > 0 {
		return n.Lines().At(0).Start
	}
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		if off := offsetOf(c); off >= 0 {
			return off
		}
	}
	if n.Type() == ast.TypeInline && n.Parent() != nil {
		return offsetOf(n.Parent())
	}
	return -1
}

// pos is the place in the chapter's file of an offset in its Body.
func (ch *Chapter) pos(body []byte, offset int) Pos {
	line := strings.Count(string(body[:max(offset, 0)]), "\n")
	if line < len(ch.bodyLines) {
		return Pos{ch.File, ch.bodyLines[line]}
	}
	return Pos{File: ch.File}
}
