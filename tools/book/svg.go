package main

import (
	"encoding/xml"
	"io"
	"regexp"
	"strings"
)

// A figure is pasted into the page as it is, so it may hold drawing and
// nothing else: the elements and attributes below, which the book's
// figures use or a diagram plausibly needs, links only to the figure's own
// ids, and no markup that an HTML parser reads differently from an XML one.
// Everything else (script, style, foreignObject, a, on* attributes, ...) is
// an error, so an author learns of it.
var (
	svgElements = setOf("svg", "g", "defs", "title", "desc", "marker", "use",
		"path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "text", "tspan")
	svgAttributes = setOf("xmlns", "version", "id", "class", "role", "aria-label", "aria-labelledby", "aria-describedby", "aria-hidden",
		"viewBox", "preserveAspectRatio", "width", "height", "transform",
		"x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "dx", "dy", "d", "points", "href",
		"fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity", "stroke-dasharray",
		"stroke-linecap", "stroke-linejoin", "opacity",
		"font-family", "font-size", "font-weight", "font-style", "text-anchor", "dominant-baseline",
		"marker-start", "marker-mid", "marker-end", "markerWidth", "markerHeight", "markerUnits", "refX", "refY", "orient")
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// urlRE finds url(...) in an attribute: fill="url(#id)" names a gradient or
// a marker of the figure; anything else would load from outside.
var urlRE = regexp.MustCompile(`(?i)url\(\s*['"]?([^'")]*)`)

const notAllowed = "is not allowed in a figure (tools/AUTHORING.md lists what a figure may contain)"

// checkSVG makes sure a figure is one well-formed <svg> element, with a text
// alternative, that holds only what the allow-lists let through. It returns
// the text from that element on, as the page shows it, and every problem,
// at its line of file.
func checkSVG(file, text string) (string, Errors) {
	var errs Errors
	// RawToken, not Token: names as written (xlink:href, not a namespace
	// URL), which is what a browser's HTML parser sees.
	d := xml.NewDecoder(strings.NewReader(text))
	var open []xml.StartElement // the elements not yet closed
	var openLines []int         // and the line each starts on
	start, end := -1, -1
	title := false
	skip := 0 // > 0: inside an element already reported
	for {
		line, _ := d.InputPos()
		before := d.InputOffset()
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		pos := Pos{file, line}
		if err != nil {
			line, _ := d.InputPos()
			errs.add(Pos{file, line}, "not well-formed XML: %v", err)
			return "", errs
		}
		raw := text[before:d.InputOffset()]
		if end >= 0 {
			// Only white space and comments may follow the root: the page
			// would show anything else, outside the checks.
			if c, ok := tok.(xml.CharData); ok && strings.TrimSpace(string(c)) == "" {
				continue
			}
			if _, ok := tok.(xml.Comment); !ok {
				errs.add(pos, "%s after the <svg> element: a figure is one <svg> element", describe(tok))
				return "", errs
			}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if start < 0 {
				start = int(before)
				if name(t.Name) != "svg" {
					errs.add(Pos{File: file}, "the root element must be <svg>, got <%s>", name(t.Name))
					return "", errs
				}
			}
			open, openLines = append(open, t), append(openLines, line)
			if skip > 0 {
				skip++
				continue
			}
			if len(open) == 2 && name(t.Name) == "title" {
				title = true
			}
			if !svgElements[name(t.Name)] {
				errs.add(pos, "<%s> %s", name(t.Name), notAllowed)
				skip = 1
				continue
			}
			for _, a := range t.Attr {
				checkSVGAttr(pos, t.Name, a, &errs)
			}
		case xml.EndElement:
			switch {
			case len(open) == 0:
				errs.add(pos, "not well-formed XML: </%s> closes no element", name(t.Name))
				return "", errs
			case open[len(open)-1].Name != t.Name:
				errs.add(pos, "not well-formed XML: <%s> of line %d is closed by </%s>", name(open[len(open)-1].Name), openLines[len(open)-1], name(t.Name))
				return "", errs
			}
			open, openLines = open[:len(open)-1], openLines[:len(openLines)-1]
			skip = max(skip-1, 0)
			if len(open) == 0 {
				end = int(d.InputOffset())
			}
		case xml.CharData:
			// Go's decoder gives CDATA as text; HTML's tokenizers do not
			// all agree with it.
			if strings.Contains(raw, "<![CDATA[") {
				errs.add(pos, "CDATA is not allowed in a figure: write &lt; and &amp;")
			} else if start < 0 && strings.TrimSpace(string(t)) != "" {
				errs.add(pos, "text before the <svg> element")
			}
		case xml.Comment:
			// In HTML "<!-->" ends a comment that XML goes on reading.
			if strings.ContainsAny(string(t), "<>") {
				errs.add(pos, "a comment in a figure may not contain < or >: HTML would end it early")
			}
		case xml.ProcInst:
			// An XML declaration may open the file; it is not pasted.
			if start >= 0 || t.Target != "xml" {
				errs.add(pos, "<?%s ...?> is not allowed in a figure", t.Target)
			}
		case xml.Directive:
			errs.add(pos, "<!%s> is not allowed in a figure", strings.Fields(string(t) + " x")[0])
		}
	}
	switch {
	case start < 0:
		errs.add(Pos{File: file}, "no <svg> element")
	case len(open) > 0:
		errs.add(Pos{File: file}, "not well-formed XML: <%s> is not closed", name(open[len(open)-1].Name))
	case !title && len(errs) == 0:
		errs.add(Pos{File: file}, "no <title> in <svg>: a figure needs a text alternative")
	}
	if len(errs) > 0 {
		return "", errs
	}
	// What follows the root (white space, comments) is kept, as it was.
	return text[start:], nil
}

// checkSVGAttr checks one attribute of an allowed element.
func checkSVGAttr(pos Pos, elem xml.Name, a xml.Attr, errs *Errors) {
	attr := name(a.Name)
	if !svgAttributes[attr] {
		errs.add(pos, "attribute %s= of <%s> %s", attr, name(elem), notAllowed)
		return
	}
	// Browsers ignore white space and control characters in a URL's scheme.
	squeezed := strings.ToLower(strings.Map(func(r rune) rune {
		if r <= ' ' {
			return -1
		}
		return r
	}, a.Value))
	switch {
	case attr == "href" && !strings.HasPrefix(a.Value, "#"):
		errs.add(pos, "%s=%q of <%s>: a figure links only to its own ids, href=\"#id\"", attr, a.Value, name(elem))
	case strings.Contains(squeezed, "javascript:"):
		errs.add(pos, "%s=%q of <%s>: javascript: is not allowed in a figure", attr, a.Value, name(elem))
	default:
		for _, m := range urlRE.FindAllStringSubmatch(a.Value, -1) {
			if !strings.HasPrefix(strings.TrimSpace(m[1]), "#") {
				errs.add(pos, "%s=%q of <%s>: url(...) in a figure names one of its own ids, url(#id)", attr, a.Value, name(elem))
				return
			}
		}
	}
}

// name is an element's or attribute's name as written: "xlink:href".
func name(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// describe names a token for a message.
func describe(tok xml.Token) string {
	switch t := tok.(type) {
	case xml.StartElement:
		return "<" + name(t.Name) + ">"
	case xml.EndElement:
		return "</" + name(t.Name) + ">"
	case xml.ProcInst:
		return "<?" + t.Target + "?>"
	default:
		return "text"
	}
}
