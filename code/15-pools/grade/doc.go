// Package grade holds the graders of chapter 15's exercises, built with the
// tag "grade": run them with make exercise CH=15, or go run ./tools/grade 15.
// Each drives the program as a real process over loopback, so it grades a
// student's copy as well as the chapter's own (BOOK_PROGRAM names it).
package grade
