package main

import (
	"html/template"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/alecthomas/chroma/v2"
	"github.com/alecthomas/chroma/v2/lexers"
)

// A source is a program file as the book shows it: its lines, its regions,
// and each line highlighted once, however many listings show it.
type source struct {
	path    string   // relative to the book's root, with slashes
	lines   []string // without their newlines
	marker  []bool   // marker[i]: line i+1 is a region marker, never shown
	regions map[string]lineRange
	html    []template.HTML // highlighted lines, made on first use
}

// lineRange is lines First..Last (1-based, inclusive) of a file.
type lineRange struct{ First, Last int }

// sources reads each file once per build.
type sources struct {
	root  string
	files map[string]*source
	errs  map[string]Errors // problems in a file's markers, reported once
}

func newSources(root string) *sources {
	return &sources{root: root, files: map[string]*source{}, errs: map[string]Errors{}}
}

var markerRE = regexp.MustCompile(`^\s*//\s*(region|endregion)\b\s*(.*?)\s*$`)

// get reads path (relative to the root). A missing file is an error; a
// file whose markers are wrong is returned with its errors.
func (ss *sources) get(path string) (*source, Errors, error) {
	if s, ok := ss.files[path]; ok {
		return s, ss.errs[path], nil
	}
	data, err := os.ReadFile(filepath.Join(ss.root, filepath.FromSlash(path)))
	if err != nil {
		return nil, nil, err
	}
	s, errs := parseSource(path, string(data))
	ss.files[path] = s
	ss.errs[path] = errs
	return s, errs, nil
}

// parseSource splits text into lines and finds its region markers:
//
//	// region NAME
//	...
//	// endregion NAME
func parseSource(path, text string) (*source, Errors) {
	text = strings.TrimSuffix(text, "\n")
	s := &source{path: path, lines: strings.Split(text, "\n"), regions: map[string]lineRange{}}
	s.marker = make([]bool, len(s.lines))
	var errs Errors
	open := map[string]int{} // region name -> line of its start marker
	for i, line := range s.lines {
		m := markerRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, kind, name := i+1, m[1], m[2]
		s.marker[i] = true
		pos := Pos{path, n}
		switch {
		case !regionNameRE.MatchString(name):
			errs.add(pos, "%s marker needs one name of letters, digits, - or _, got %q", kind, name)
		case kind == "region" && open[name] > 0:
			errs.add(pos, "region %q starts again before its end (started at line %d)", name, open[name])
		case kind == "region":
			if first, dup := s.regions[name]; dup {
				errs.add(pos, "region %q is defined twice (first at line %d)", name, first.First-1)
			}
			open[name] = n
		case open[name] == 0:
			errs.add(pos, "endregion %q has no region %q before it", name, name)
		default:
			if _, dup := s.regions[name]; !dup {
				s.regions[name] = lineRange{open[name] + 1, n - 1}
			}
			delete(open, name)
		}
	}
	for name, n := range open {
		errs.add(Pos{path, n}, "region %q has no \"// endregion %s\"", name, name)
	}
	return s, errs
}

var regionNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// all is the whole file as a range.
func (s *source) all() lineRange { return lineRange{1, len(s.lines)} }

// highlighted returns line n (1-based) as highlighted HTML.
func (s *source) highlighted(h *highlighter, n int) template.HTML {
	if s.html == nil {
		text := strings.Join(s.lines, "\n") + "\n"
		s.html = keptHighlights.get(filepath.Ext(s.path)+"\x00"+text, func() []template.HTML {
			return h.lines(lexerFor(s.path), text)
		})
	}
	return s.html[n-1]
}

// highlights keeps highlighted files across builds, by content, for make
// serve: a rebuild after an edit highlights only the files that changed. A
// build run once (make site, the tests, the benchmarks) keeps nothing.
type highlights struct {
	mu sync.Mutex
	on bool
	m  map[string][]template.HTML
}

var keptHighlights highlights

// keep turns keeping on, for the rest of this process.
func (k *highlights) keep() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.on, k.m = true, map[string][]template.HTML{}
}

func (k *highlights) get(key string, make func() []template.HTML) []template.HTML {
	k.mu.Lock()
	html, ok := k.m[key]
	on := k.on
	k.mu.Unlock()
	if ok {
		return html
	}
	html = make()
	if on {
		k.mu.Lock()
		k.m[key] = html
		k.mu.Unlock()
	}
	return html
}

// lexerFor picks a lexer by file name.
func lexerFor(path string) chroma.Lexer {
	return lexerCache.get(filepath.Ext(path), func() chroma.Lexer { return lexers.Match(filepath.Base(path)) })
}

// lexerNamed picks a lexer by a fenced block's language ("go", "c", "sh").
func lexerNamed(lang string) chroma.Lexer {
	return lexerCache.get("lang:"+lang, func() chroma.Lexer { return lexers.Get(lang) })
}

// lexerCache keeps each lexer found: finding one by name or file name
// tries every lexer chroma has, which costs more than lexing a file.
var lexerCache = lexerTable{m: map[string]chroma.Lexer{}}

type lexerTable struct {
	mu sync.Mutex
	m  map[string]chroma.Lexer
}

func (t *lexerTable) get(key string, find func() chroma.Lexer) chroma.Lexer {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.m[key]; ok {
		return l
	}
	l := find()
	if l == nil {
		l = lexers.Fallback
	}
	l = chroma.Coalesce(l)
	t.m[key] = l
	return l
}
