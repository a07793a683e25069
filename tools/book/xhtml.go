package main

import (
	"fmt"
	"html/template"
	"slices"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// xhtml re-writes a chapter's HTML as XHTML for the EPUB: an XML parser
// reads it there, which knows no named entity but XML's five, no void
// element without its slash, no SVG without its namespace. Parsing the
// fragment and writing the tree out again handles all of it, whatever
// goldmark or a figure wrote.
//
// Each link goes through link, which returns the link the EPUB gives, or
// false for a link that has no place there: the <a> is dropped and its text
// kept. A heading's link to itself (a.anchor) is dropped with its "#", and
// a listing's or a diff's line numbers (links out of the tab order) become
// plain numbers: in a reader, a tap on one would leave the book for the
// program's page online.
func xhtml(fragment template.HTML, link func(href string) (string, bool)) (template.HTML, error) {
	body := &html.Node{Type: html.ElementNode, Data: "body", DataAtom: atom.Body}
	nodes, err := html.ParseFragment(strings.NewReader(string(fragment)), body)
	if err != nil {
		return "", fmt.Errorf("parse a chapter's HTML: %w", err)
	}
	var b strings.Builder
	for _, n := range nodes {
		writeXHTML(&b, n, link)
	}
	return template.HTML(b.String()), nil
}

// voidElements are HTML's elements that have no end tag.
var voidElements = []string{"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

func writeXHTML(b *strings.Builder, n *html.Node, link func(string) (string, bool)) {
	switch n.Type {
	case html.TextNode:
		b.WriteString(xmlEscape(n.Data, false))
		return
	case html.ElementNode:
	default:
		return // comments, doctypes: nothing a reader sees
	}
	name, attrs := n.Data, n.Attr
	if name == "a" && n.Namespace == "" {
		class := nodeAttr(n, "class")
		switch href, ok := link(nodeAttr(n, "href")); {
		case class == "anchor":
			return
		case class == "ln":
			name, attrs = "span", []html.Attribute{{Key: "class", Val: "ln"}}
		case nodeAttr(n, "tabindex") == "-1":
			// A diff's line number, in its span.ln.
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				writeXHTML(b, c, link)
			}
			return
		case !ok:
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				writeXHTML(b, c, link)
			}
			return
		default:
			attrs = slices.Clone(attrs)
			for i := range attrs {
				if attrs[i].Key == "href" {
					attrs[i].Val = href
				}
			}
			attrs = slices.DeleteFunc(attrs, func(a html.Attribute) bool { return a.Key == "tabindex" || a.Key == "aria-hidden" })
		}
	}
	b.WriteString("<" + name)
	if name == "svg" && n.Namespace == "svg" && nodeAttr(n, "xmlns") == "" {
		b.WriteString(` xmlns="http://www.w3.org/2000/svg"`)
	}
	for _, a := range attrs {
		key := a.Key
		if a.Namespace != "" {
			key = a.Namespace + ":" + key
		}
		b.WriteString(" " + key + `="` + xmlEscape(a.Val, true) + `"`)
	}
	if n.FirstChild == nil && (n.Namespace != "" || slices.Contains(voidElements, name)) {
		b.WriteString("/>")
		return
	}
	b.WriteString(">")
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		writeXHTML(b, c, link)
	}
	b.WriteString("</" + name + ">")
}

// nodeAttr is the value of n's attribute key, or "".
func nodeAttr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key && a.Namespace == "" {
			return a.Val
		}
	}
	return ""
}

// xmlEscape escapes text for XML's text, or for an attribute's value in
// double quotes.
func xmlEscape(s string, quoted bool) string {
	if quoted {
		return attrEscaper.Replace(s)
	}
	return textEscaper.Replace(s)
}

var (
	textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
)
