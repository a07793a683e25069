package main

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// theme is the site's look: page templates, stylesheet and icon.
//
//go:embed theme
var theme embed.FS

func mustRead(name string) []byte {
	data, err := theme.ReadFile(name)
	if err != nil {
		panic(err) // embedded at compile time: cannot be missing
	}
	return data
}

// Render loads the book in root and returns the site's files by path.
func Render(root string) (map[string][]byte, error) { return renderBook(root, 0) }

// renderBook is Render for a site whose PDF has pdfSize bytes (0: none),
// which every page links.
func renderBook(root string, pdfSize int64) (map[string][]byte, error) {
	b, err := Load(root)
	if err != nil {
		return nil, err
	}
	r, err := newRenderer(b)
	if err != nil {
		return nil, err
	}
	r.pdfSize = pdfSize
	return r.render()
}

// Build renders the book in root into the directory out. The new site is
// written beside out and swapped in only when complete, so a failed build
// leaves the previous site exactly as it was. The PDF in out, which the
// pdf command prints and the build does not, is kept, and linked.
func Build(root, out string) error {
	files, err := renderBook(root, pdfSize(out))
	if err != nil {
		return err
	}
	if pdf, err := os.ReadFile(filepath.Join(out, pdfFile)); err == nil {
		files[pdfFile] = pdf
	}
	parent := filepath.Dir(out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(out)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // gone after the swap; cleans up after a failure
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for name, data := range files {
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	old := ""
	if _, err := os.Stat(out); err == nil {
		old = filepath.Join(parent, filepath.Base(out)+".old-"+filepath.Base(tmp))
		if err := os.Rename(out, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		if old != "" {
			os.Rename(old, out) // put the previous site back
		}
		return err
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// Diff compares the files of two site directories and describes the first
// difference in path order, or returns "" when they are identical.
func Diff(want, got string) (string, error) {
	a, err := readTree(want)
	if err != nil {
		return "", err
	}
	b, err := readTree(got)
	if err != nil {
		return "", err
	}
	names := map[string]bool{}
	for n := range a {
		names[n] = true
	}
	for n := range b {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		da, inA := a[n]
		db, inB := b[n]
		switch {
		case !inA:
			return fmt.Sprintf("%s is built but not in %s", n, want), nil
		case !inB:
			return fmt.Sprintf("%s is in %s but no longer built", n, want), nil
		case !bytes.Equal(da, db):
			line := 1 + bytes.Count(da[:commonPrefix(da, db)], []byte("\n"))
			return fmt.Sprintf("%s differs from a fresh build, from line %d", filepath.Join(want, n), line), nil
		}
	}
	return "", nil
}

func commonPrefix(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

func readTree(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		files[filepath.ToSlash(rel)] = data
		return err
	})
	return files, err
}
