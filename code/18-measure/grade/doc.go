// Package grade holds the graders of chapter 18's exercises, built with the
// tag "grade": run them with make exercise CH=18, or go run ./tools/grade 18.
// Each runs the program as a real process, as a reader does, and reads the
// table it prints, so it grades a student's copy as well as the chapter's
// own (BOOK_PROGRAM names it).
package grade
