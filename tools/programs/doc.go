// Package programs has no code: its tests check what every chapter's
// program, and its reference solution, has in common (see the "Program
// shape" section of tools/AUTHORING.md).
//
//	go test ./tools/programs
package programs
