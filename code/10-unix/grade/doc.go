// Package grade holds the graders of chapter 10's exercises, built with the
// tag "grade": run them with make exercise CH=10, or go run ./tools/grade 10.
// Each drives the program as a real process over a Unix socket, so it grades
// a student's copy as well as the chapter's own (BOOK_PROGRAM names it).
package grade
