package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// partsFile declares the book's parts. It is the one place they are
// written: the templates and the tests read them from the Book.
const partsFile = "chapters/parts.md"

var (
	// partHeadingRE is a part's heading: "## Part II: Other sockets".
	partHeadingRE = regexp.MustCompile(`^## Part ([IVXLC]+): (\S.*)$`)
	// partRangeRE is the value of chapters: "10-12", or "20" for a part of
	// one chapter.
	partRangeRE = regexp.MustCompile(`^(\d\d)(?:-(\d\d))?$`)
)

// loadParts reads chapters/parts.md and puts every chapter in its part.
// Lines before the first part's heading are the file's own introduction,
// for whoever opens it; after it, a part is its heading and two lines,
//
//	## Part II: Other sockets
//	chapters: 10-12
//	summary: Unix domain sockets, datagrams, names and addresses.
//
// The runs of chapters start at 01 and follow each other with no gap and
// no overlap, so that every chapter is in exactly one part and the parts
// are in book order. A run may name chapters not written yet: that is the
// plan, and the site says they are coming.
func (b *Book) loadParts(errs *Errors) {
	before := len(*errs)
	text, ok := b.read(partsFile, Pos{File: partsFile}, `not found: it declares the book's parts ("## Part I: Title", then chapters: and summary:), and every chapter is in one`, errs)
	if !ok {
		return
	}
	var p *Part
	inParts := false // past the introduction
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		pos := Pos{partsFile, i + 1}
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "## "):
			inParts = true
			p = b.partHeading(pos, line, errs)
		case line == "" || !inParts:
		case p == nil:
			// The lines of a part whose heading is wrong: its one error
			// is enough.
		default:
			p.setKey(pos, line, errs)
		}
	}
	if len(b.Parts) == 0 && len(*errs) == before {
		errs.add(Pos{File: partsFile}, `no parts: each part is a heading "## Part I: Title", then its chapters: and summary: lines`)
		return
	}
	for _, p := range b.Parts {
		if p.keys["chapters"] == 0 {
			errs.add(p.Pos, "Part %s names no chapters: give its chapters as chapters: FIRST-LAST (such as chapters: 10-12)", p.Numeral)
		}
		if p.keys["summary"] == 0 {
			errs.add(p.Pos, "Part %s has no summary: give one line on what it covers, as summary: ...", p.Numeral)
		}
	}
	checkRuns(b.Parts, errs)
	if len(*errs) > before {
		// A chapter may seem in no part only because a part is wrong.
		return
	}
	last := b.Parts[len(b.Parts)-1]
	for _, ch := range b.Chapters {
		for _, p := range b.Parts {
			if p.First <= ch.Num && ch.Num <= p.Last {
				ch.Part = p
				p.Chapters = append(p.Chapters, ch)
				break
			}
		}
		if ch.Part == nil {
			errs.add(Pos{partsFile, last.keys["chapters"]}, "chapter %02d (%s) is in no part: the last part, Part %s, ends at %02d", ch.Num, ch.File, last.Numeral, last.Last)
		}
	}
}

// partHeading reads a part's heading and returns the part, or nil when the
// heading is not one.
func (b *Book) partHeading(pos Pos, line string, errs *Errors) *Part {
	m := partHeadingRE.FindStringSubmatch(line)
	if m == nil {
		errs.add(pos, `a part's heading is "## Part I: Title" (a Roman numeral, a colon, the title), got %q`, line)
		return nil
	}
	p := &Part{Pos: pos, Numeral: m[1], Title: m[2], keys: map[string]int{}}
	if want := roman(len(b.Parts) + 1); p.Numeral != want {
		errs.add(pos, "Part %s is out of order: the parts are numbered I, II, III, ... in book order, and this is Part %s", p.Numeral, want)
	}
	b.Parts = append(b.Parts, p)
	return p
}

// setKey reads one "key: value" line of a part.
func (p *Part) setKey(pos Pos, line string, errs *Errors) {
	key, value, ok := strings.Cut(line, ":")
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	switch {
	case !ok || value == "" || !frontKeyRE.MatchString(key):
		errs.add(pos, `after its heading a part has only "chapters: FIRST-LAST" and "summary: ..." lines, got %q`, line)
		return
	case p.keys[key] > 0:
		errs.add(pos, "key %q is repeated (first on line %d)", key, p.keys[key])
		return
	case key != "chapters" && key != "summary":
		errs.add(pos, "unknown key %q in a part (known: chapters, summary); the part's title is in its heading", key)
		return
	}
	p.keys[key] = pos.Line
	if key == "summary" {
		p.Summary = value
		return
	}
	m := partRangeRE.FindStringSubmatch(value)
	if m == nil {
		errs.add(pos, "chapters: is FIRST-LAST in two-digit chapter numbers (chapters: 01-09), or one chapter (chapters: 20); got %q", value)
		return
	}
	first, _ := strconv.Atoi(m[1])
	last := first
	if m[2] != "" {
		last, _ = strconv.Atoi(m[2])
	}
	switch {
	case first == 0:
		errs.add(pos, "there is no chapter 00: chapters are numbered from 01")
	case last < first:
		errs.add(pos, "chapters: %s runs backwards: FIRST-LAST, the first chapter first", value)
	default:
		p.First, p.Last = first, last
	}
}

// checkRuns checks that the parts' runs of chapters start at 01 and follow
// each other. A part whose run is missing or wrong is reported already;
// the part after it is not compared with it.
func checkRuns(parts []*Part, errs *Errors) {
	var prev *Part
	for i, p := range parts {
		if p.First == 0 {
			prev = nil
			continue
		}
		pos := Pos{partsFile, p.keys["chapters"]}
		switch {
		case i == 0 && p.First != 1:
			errs.add(pos, "Part %s starts at chapter %02d: the first part starts at 01", p.Numeral, p.First)
		case prev != nil && p.First != prev.Last+1:
			errs.add(pos, "Part %s starts at chapter %02d, but Part %s ends at %02d: it must start at %02d (every chapter is in one part, the parts in book order)",
				p.Numeral, p.First, prev.Numeral, prev.Last, prev.Last+1)
		}
		prev = p
	}
}

// roman writes n, from 1 to 399, in Roman numerals: 4 is IV.
func roman(n int) string {
	var b strings.Builder
	for _, d := range []struct {
		value  int
		digits string
	}{{100, "C"}, {90, "XC"}, {50, "L"}, {40, "XL"}, {10, "X"}, {9, "IX"}, {5, "V"}, {4, "IV"}, {1, "I"}} {
		for ; n >= d.value; n -= d.value {
			b.WriteString(d.digits)
		}
	}
	return b.String()
}

// partLabel is how the site names a part: "Part II: Other sockets".
func partLabel(p *Part) string { return fmt.Sprintf("Part %s: %s", p.Numeral, p.Title) }
