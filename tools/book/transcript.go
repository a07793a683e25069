package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// pane is one column of a transcript: what one side (server, client, ...)
// typed and saw.
type pane struct {
	Name  string
	Lines []string
}

// parseTranscript reads the format tools/booktest writes: "=== NAME" starts
// a pane, and every other line belongs to the pane above it.
func parseTranscript(text string) ([]pane, error) {
	var panes []pane
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if name, ok := strings.CutPrefix(line, "=== "); ok {
			panes = append(panes, pane{Name: name})
			continue
		}
		if len(panes) == 0 {
			return nil, fmt.Errorf("line %d: text before the first \"=== PANE\" line", i+1)
		}
		p := &panes[len(panes)-1]
		p.Lines = append(p.Lines, line)
	}
	if len(panes) == 0 {
		return nil, fmt.Errorf("empty transcript")
	}
	return panes, nil
}

// checkSVG makes sure a figure is well-formed SVG with a text alternative,
// since it is pasted into the page as it is.
func checkSVG(text string) error {
	d := xml.NewDecoder(strings.NewReader(text))
	depth, root, title := 0, "", false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			line, _ := d.InputPos()
			return fmt.Errorf("line %d: not well-formed XML: %v", line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				root = t.Name.Local
			}
			if depth == 1 && t.Name.Local == "title" {
				title = true
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	switch {
	case root != "svg":
		return fmt.Errorf("the root element must be <svg>, got <%s>", root)
	case !title:
		return fmt.Errorf("no <title> in <svg>: a figure needs a text alternative")
	}
	return nil
}
