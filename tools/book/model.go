package main

import (
	"fmt"
	"sort"
	"strings"
)

// Book is everything the site is made from, read and checked before
// anything is rendered: the chapters in order, each with its resolved
// directives.
type Book struct {
	Title    string
	Chapters []*Chapter
	Pages    []*Chapter // pages that are not chapters (instructors.md): no number, no program
	sources  *sources
}

// Chapter is one chapters/NN-slug.md and the program it pairs with.
type Chapter struct {
	Num     int
	Slug    string // "02-socket": the file name without .md; also the page's name
	File    string // "chapters/02-socket.md"
	Title   string
	Summary string
	Program string   // "code/02-socket"
	Files   []string // the program's .go files, main.go first and tests last
	Tests   []string // the program's _test.go files
	Body    string   // Markdown, each directive replaced by a placeholder paragraph
	Blocks  []*Block // the directives, in order; Blocks[i] replaces placeholder(i)
	Prev    *Chapter
	Next    *Chapter
}

// isPage reports whether c is a page that is not a chapter.
func (c *Chapter) isPage() bool { return c.Num == 0 }

// Block is one resolved directive: what it shows and where it was written.
type Block struct {
	Pos     Pos
	Kind    string // listing, diff, transcript, figure
	File    string // listing and diff: the source file; transcript and figure: the file shown
	Region  string // listing: the region, or "" for the whole file
	Old     string // diff: the previous chapter's file
	Caption string // figure
}

// Pos is a place in a file, as a compiler prints it.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return p.File
}

// Error is one problem with the book's sources.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Errors is every problem found, reported together so that one build shows
// them all.
type Errors []*Error

func (es *Errors) add(pos Pos, format string, args ...any) {
	*es = append(*es, &Error{pos, fmt.Sprintf(format, args...)})
}

func (es Errors) Error() string {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Pos.File != es[j].Pos.File {
			return es[i].Pos.File < es[j].Pos.File
		}
		return es[i].Pos.Line < es[j].Pos.Line
	})
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// err returns es as an error, or nil when there are none.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
