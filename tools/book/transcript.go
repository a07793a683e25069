package main

import (
	"fmt"
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
	if strings.TrimSpace(text) == "" {
		return nil, &transcriptError{1, "the transcript is empty"}
	}
	var panes []pane
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if name, ok := strings.CutPrefix(line, "=== "); ok {
			panes = append(panes, pane{Name: name})
			continue
		}
		if len(panes) == 0 {
			return nil, &transcriptError{i + 1, "text before the first \"=== PANE\" line"}
		}
		p := &panes[len(panes)-1]
		p.Lines = append(p.Lines, line)
	}
	return panes, nil
}

// transcriptError is a problem at a line of a transcript.
type transcriptError struct {
	Line int
	Msg  string
}

func (e *transcriptError) Error() string {
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}
