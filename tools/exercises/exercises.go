// Package exercises reads a chapter's exercises, for the site's table of
// them and for the grader's report: the numbered list under the chapter's
// "## Exercises" heading, each item starting with its title in bold, and
// which of them the chapter's graders grade.
package exercises

import (
	"regexp"
	"strconv"
	"strings"
)

// Exercise is one item of a chapter's exercise list.
type Exercise struct {
	Num   int
	Title string
}

var itemRE = regexp.MustCompile(`^(\d+)\.\s+\*\*(.+?)\.?\*\*`)

// List reads the exercises from a chapter's Markdown.
func List(markdown string) []Exercise {
	var list []Exercise
	in := false
	for _, line := range strings.Split(markdown, "\n") {
		if strings.HasPrefix(line, "## ") {
			in = strings.TrimSpace(line) == "## Exercises"
			continue
		}
		if m := itemRE.FindStringSubmatch(line); in && m != nil {
			n, _ := strconv.Atoi(m[1])
			list = append(list, Exercise{n, m[2]})
		}
	}
	return list
}

var graderRE = regexp.MustCompile(`(?m)^func TestExercise(\d+)`)

// Graded reads a chapter's grade/grade_test.go and returns the numbers of the
// exercises it has a grader for (a test named TestExerciseN...).
func Graded(graderSource string) map[int]bool {
	graded := map[int]bool{}
	for _, m := range graderRE.FindAllStringSubmatch(graderSource, -1) {
		n, _ := strconv.Atoi(m[1])
		graded[n] = true
	}
	return graded
}
