// Command book renders the book: chapters/ and code/ into the static site
// in site/.
//
//	go run ./tools/book build            # write site/
//	go run ./tools/book serve            # write site/, serve it on 127.0.0.1:8000, rebuild on change
//	go run ./tools/book check            # fail if site/ is not what the sources build
//	go run ./tools/book pdf              # print the PDF into site/ with Chromium, and build site/
//
// The build writes the EPUB with the rest of the site; the PDF needs
// Chromium, so it has a command of its own (editions.go).
//
// Every problem in the sources is printed as FILE:LINE: MESSAGE, and the
// previous site is left as it was.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("book", flag.ContinueOnError)
	root := fs.String("root", ".", "the book's top directory (with chapters/ and code/)")
	addr := fs.String("addr", "127.0.0.1:8000", "serve: the address to serve the site on")
	out := fs.String("out", "", "build, pdf: the site's directory (default ROOT/site)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: book [-root DIR] build|check|pdf|serve [-addr ADDR] [-out DIR]")
		fs.PrintDefaults()
	}
	if len(args) == 0 {
		fs.Usage()
		return errors.New("no command")
	}
	cmd := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	site := filepath.Join(*root, "site")
	if *out != "" && cmd != "check" && cmd != "serve" {
		site = *out
	}
	switch cmd {
	case "build":
		if err := Build(*root, site); err != nil {
			return buildFailed(err)
		}
		fmt.Printf("built %s\n", site)
		return nil
	case "pdf":
		return printPDF(*root, site)
	case "check":
		return check(*root, site)
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			return err
		}
		return serve(ctx, *root, ln)
	}
	fs.Usage()
	return fmt.Errorf("unknown command %q", cmd)
}

// buildFailed says how many problems there were after listing them all.
func buildFailed(err error) error {
	var errs Errors
	if errors.As(err, &errs) {
		return fmt.Errorf("%v\nbuild failed: %d problem(s); site/ left as it was", err, len(errs))
	}
	return fmt.Errorf("%v\nbuild failed; site/ left as it was", err)
}

// check builds into a temporary directory and compares it with site/.
func check(root, site string) error {
	tmp, err := os.MkdirTemp("", "book-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fresh := filepath.Join(tmp, "site")
	// The build keeps the PDF it finds, which it does not print: give it
	// site/'s, so that the pages link it as site/'s do.
	if err := copyPDF(site, fresh); err != nil {
		return err
	}
	if err := Build(root, fresh); err != nil {
		return buildFailed(err)
	}
	d, err := Diff(site, fresh)
	if err != nil {
		return err
	}
	if d != "" {
		return fmt.Errorf("site/ is not what the sources build: %s\nrun: make site", d)
	}
	fmt.Println("site/ is current")
	return nil
}
