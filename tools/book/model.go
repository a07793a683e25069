package main

import (
	"fmt"
	"slices"
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
	Parts    []*Part    // from chapters/parts.md, in book order; every chapter is in one
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
	Part    *Part // nil for a page that is not a chapter

	bodyLines []int // bodyLines[i]: the line of File that line i+1 of Body comes from
}

// isPage reports whether c is a page that is not a chapter.
func (c *Chapter) isPage() bool { return c.Num == 0 }

// Part is one part of the book, as chapters/parts.md declares it: a run
// of chapters by number. The run is the plan; Chapters are those of it
// that are written.
type Part struct {
	Pos      Pos    // its heading
	Numeral  string // "II"
	Title    string
	Summary  string
	First    int // the run of chapter numbers, First to Last
	Last     int
	Chapters []*Chapter

	keys map[string]int // key: the line it is on
}

// ID is the part's id on the index page and in the single-page edition.
func (p *Part) ID() string { return "part-" + strings.ToLower(p.Numeral) }

// Coming names the chapters of the part not written yet, such as
// "chapters 13–18" or "chapter 4", or returns "" when all are.
func (p *Part) Coming() string {
	written := map[int]bool{}
	for _, ch := range p.Chapters {
		written[ch.Num] = true
	}
	var runs []string
	missing := 0
	for n := p.First; n <= p.Last; n++ {
		if written[n] {
			continue
		}
		missing++
		end := n
		for end < p.Last && !written[end+1] {
			end++
		}
		if end > n {
			runs = append(runs, fmt.Sprintf("%d–%d", n, end))
			missing += end - n
		} else {
			runs = append(runs, fmt.Sprint(n))
		}
		n = end
	}
	switch missing {
	case 0:
		return ""
	case 1:
		return "chapter " + runs[0]
	}
	return "chapters " + strings.Join(runs, ", ")
}

// Block is one resolved directive: what it shows and where it was written.
type Block struct {
	Pos     Pos
	Kind    string // listing, diff, transcript, figure
	File    string // listing and diff: the source file; transcript and figure: the file shown
	Region  string // listing: the region, or "" for the whole file
	Old     string // diff: the file it is compared with, in the base chapter's program
	From    string // diff: the slug of the chapter it starts from, or "" for the previous one
	Base    *Chapter
	Caption string // figure
	SVG     string // figure: the checked <svg> element, as the page shows it
	Panes   []pane // transcript: its panes, as read and checked by Load
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

// once adds e unless it is there already: a file's problem is reported once,
// however many directives name the file.
func (es *Errors) once(e *Error) {
	if !slices.Contains(*es, e) {
		*es = append(*es, e)
	}
}

// err returns es as an error, or nil when there are none.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
