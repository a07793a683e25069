package main

import (
	"bytes"
	"net/url"
	"path"
	"sort"
	"strings"

	"golang.org/x/net/html"
)

// checkLinks parses every page of a built site and reports each internal
// link to a missing page or anchor, each id used twice on a page, and each
// resource (script, stylesheet, image, icon) loaded from outside the site.
// Links to other sites (a man page, a kernel source file) are fine; loading
// from them is not: the book must work offline.
//
// elsewhere reports a file that is in the site without being built with
// it (the PDF, which the pdf command prints).
func checkLinks(files map[string][]byte, sourceOf func(page string) string, elsewhere func(name string) bool) Errors {
	ids := map[string]map[string]bool{}
	type link struct {
		page, attr, target string
	}
	var links []link
	var errs Errors
	pages := make([]string, 0, len(files))
	for name := range files {
		if strings.HasSuffix(name, ".html") {
			pages = append(pages, name)
		}
	}
	sort.Strings(pages)
	for _, page := range pages {
		seen := map[string]bool{}
		ids[page] = seen
		z := html.NewTokenizer(bytes.NewReader(files[page]))
		for {
			tt := z.Next()
			if tt == html.ErrorToken {
				break
			}
			if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
				continue
			}
			tok := z.Token()
			for _, a := range tok.Attr {
				switch {
				case a.Key == "id":
					if seen[a.Val] {
						errs.add(Pos{File: sourceOf(page)}, "id %q is used twice on %s", a.Val, page)
					}
					seen[a.Val] = true
				case a.Key == "href" || a.Key == "src":
					attr := tok.Data + " " + a.Key
					if tok.Data == "a" && a.Key == "href" {
						attr = "link"
					}
					links = append(links, link{page, attr, a.Val})
				}
			}
		}
	}
	for _, l := range links {
		u, err := url.Parse(l.target)
		if err != nil {
			errs.add(Pos{File: sourceOf(l.page)}, "%s on %s: bad URL %q", l.attr, l.page, l.target)
			continue
		}
		if u.Scheme != "" || u.Host != "" {
			if l.attr != "link" {
				errs.add(Pos{File: sourceOf(l.page)}, "%s on %s loads %s from outside the site", l.attr, l.page, l.target)
			}
			continue
		}
		target := l.page
		if u.Path != "" {
			target = path.Join(path.Dir(l.page), u.Path)
		}
		if _, ok := files[target]; !ok && !elsewhere(target) {
			errs.add(Pos{File: sourceOf(l.page)}, "%s on %s to %s: no such page", l.attr, l.page, l.target)
			continue
		}
		if u.Fragment != "" && strings.HasSuffix(target, ".html") && !ids[target][u.Fragment] {
			errs.add(Pos{File: sourceOf(l.page)}, "%s on %s to %s: no id %q on %s", l.attr, l.page, l.target, u.Fragment, target)
		}
	}
	return errs
}
