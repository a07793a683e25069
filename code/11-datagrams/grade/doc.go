// Package grade holds the graders of chapter 11's exercises, built with the
// tag "grade": run them with make exercise CH=11, or go run ./tools/grade 11.
// Each drives the program as a real process over UDP on 127.0.0.1, so it
// grades a student's copy as well as the chapter's own (BOOK_PROGRAM names it).
package grade
