package main

import (
	"bytes"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

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

// sources reads each file once per build, and only the book's own files.
type sources struct {
	root  string // as given
	real  string // root with every link followed: what "inside the book" means
	files map[string]*sourceFile
}

// sourceFile is one program file as read: its source, the problems in its
// markers (reported once, however many listings show it), or why it could
// not be read.
type sourceFile struct {
	src  *source
	errs Errors
	err  error
}

func newSources(root string) (*sources, error) {
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("the book's directory: %w", err)
	}
	return &sources{root: root, real: real, files: map[string]*sourceFile{}}, nil
}

var markerRE = regexp.MustCompile(`^\s*//\s*(region|endregion)\b\s*(.*?)\s*$`)

// get reads path (relative to the root) with read. A file whose markers are
// wrong is returned with their errors.
func (ss *sources) get(path string) (*source, Errors, error) {
	if f, ok := ss.files[path]; ok {
		return f.src, f.errs, f.err
	}
	f := &sourceFile{}
	ss.files[path] = f
	data, err := ss.read(path)
	if err != nil {
		f.err = err
		return nil, nil, err
	}
	f.src, f.errs = parseSource(path, string(data))
	return f.src, f.errs, nil
}

// read reads name (relative to the root, with slashes) and refuses what
// the site must not show: a file whose real path, every link followed, is
// outside the book (a link to /etc/passwd would be published), anything but
// a regular file (a FIFO would block the build), and bytes that are not
// UTF-8 (every page says it is UTF-8). Those are an *Error at the file; a
// missing file is an error that wraps fs.ErrNotExist.
func (ss *sources) read(name string) ([]byte, error) {
	real, err := ss.resolve(name)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, &Error{Pos{File: name}, "not a regular file: the site shows only the book's own files"}
	}
	// The real path, not the name: a link swapped since resolve is not
	// followed.
	data, err := os.ReadFile(real)
	if err != nil {
		return nil, err
	}
	if e := checkUTF8(name, data); e != nil {
		return nil, e
	}
	return data, nil
}

// resolve returns the real path of name (a file or a directory, relative to
// the root), or an *Error when it is outside the book.
func (ss *sources) resolve(name string) (string, error) {
	real, err := filepath.EvalSymlinks(filepath.Join(ss.root, filepath.FromSlash(name)))
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(ss.real, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", &Error{Pos{File: name}, fmt.Sprintf("a link to %s, outside the book: the site shows only the book's own files", real)}
	}
	return real, nil
}

// checkUTF8 reports the first byte of data that is not UTF-8, at its line.
func checkUTF8(name string, data []byte) *Error {
	if utf8.Valid(data) {
		return nil
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			line := 1 + bytes.Count(data[:i], []byte("\n"))
			return &Error{Pos{name, line}, fmt.Sprintf("not UTF-8 (byte 0x%02x): pages are UTF-8", data[i])}
		}
		i += size
	}
	return nil
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
// serve: a rebuild after an edit highlights only the files that changed.
// Each build keeps what it uses and has at hand what the build before it
// used; anything older is forgotten, so an edited file's earlier versions
// are not kept for ever. A build run once (make site, the tests, the
// benchmarks) keeps nothing.
type highlights struct {
	mu   sync.Mutex
	on   bool
	m    map[string][]template.HTML // used by the build under way
	last map[string][]template.HTML // used by the build before it, not yet by this one
}

var keptHighlights highlights

// keep starts a build that keeps its highlights for the next one. A build
// that failed before it highlighted anything leaves the one before it at
// hand.
func (k *highlights) keep() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.m) > 0 {
		k.last = k.m
	}
	k.on, k.m = true, map[string][]template.HTML{}
}

func (k *highlights) get(key string, make func() []template.HTML) []template.HTML {
	k.mu.Lock()
	html, ok := k.m[key]
	if !ok {
		if html, ok = k.last[key]; ok {
			delete(k.last, key) // into k.m, below
		}
	}
	on := k.on
	k.mu.Unlock()
	if !ok {
		html = make()
	}
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
