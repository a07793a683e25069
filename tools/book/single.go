package main

import (
	"bytes"
	"html/template"
	"strings"

	"golang.org/x/net/html"
)

// onePage rewrites a chapter's HTML to live inside the single-page edition:
// every id gets the chapter's slug in front, and links to a chapter (or a
// section of one) become links within the page. Figures keep their ids,
// which are unique across the book already and which the figures refer to.
func onePage(ch *Chapter, chapters []*Chapter, content template.HTML) template.HTML {
	pages := map[string]string{}
	for _, c := range chapters {
		pages[chapterLink(c)] = c.Slug
	}
	var b bytes.Buffer
	z := html.NewTokenizer(strings.NewReader(string(content)))
	svg := 0
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		raw := z.Raw()
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			if tt == html.EndTagToken && svg > 0 {
				if name, _ := z.TagName(); string(name) == "svg" {
					svg--
				}
			}
			b.Write(raw)
			continue
		}
		tok := z.Token()
		if tok.Data == "svg" && tt == html.StartTagToken {
			svg++
		}
		if svg > 0 {
			b.Write(raw)
			continue
		}
		changed := false
		for i, a := range tok.Attr {
			switch a.Key {
			case "id":
				tok.Attr[i].Val = ch.Slug + "-" + a.Val
				changed = true
			case "href":
				page, frag, _ := strings.Cut(a.Val, "#")
				switch slug, ok := pages[page]; {
				case page == "" && frag != "":
					tok.Attr[i].Val = "#" + ch.Slug + "-" + frag
				case ok && frag != "":
					tok.Attr[i].Val = "#" + slug + "-" + frag
				case ok:
					tok.Attr[i].Val = "#" + slug
				default:
					continue
				}
				changed = true
			}
		}
		if changed {
			b.WriteString(tok.String())
		} else {
			b.Write(raw)
		}
	}
	return template.HTML(b.String())
}
