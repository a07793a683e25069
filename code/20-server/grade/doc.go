// Package grade holds the graders of chapter 20's exercises, built with the
// tag "grade": run them with make exercise CH=20, or go run ./tools/grade 20.
// Each drives the program as a real process over loopback, so it grades a
// student's copy as well as the chapter's own (BOOK_PROGRAM names it).
package grade
